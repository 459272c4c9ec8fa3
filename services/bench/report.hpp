// Human-readable output: one block per kind of run, and the figures table (each figure, its
// target, the ratio, met or not) that `make bench` ends with. JSON output is each module's
// to_json; this file only prints.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "broker_bench.hpp"
#include "floor.hpp"
#include "http_load.hpp"
#include "original.hpp"
#include "system_run.hpp"

namespace op::bench {

// A figure against its target. `at_most`: smaller is better (latency); else larger is better.
struct Figure {
    std::string name;
    double value = 0;
    std::string unit;
    double target = 0;
    bool at_most = false;
    std::string note;  // e.g. "median of 3 runs"
    // Extra condition that must hold for the figure to count as met (e.g. zero errors).
    bool condition = true;
    std::string condition_text;

    // value/target for "at least", target/value for "at most": >= 1 means met, either way.
    double ratio() const;
    bool met() const { return condition && ratio() >= 1.0; }
};

nlohmann::json to_json(const Figure& f);

void print_floor(std::ostream& out, const FloorResult& f);
void print_broker_run(std::ostream& out, const BrokerRun& r);
void print_load(std::ostream& out, const LoadResult& r);
void print_system_run(std::ostream& out, const SystemRun& r,
                      const std::optional<FloorResult>& floor = std::nullopt);
void print_processes(std::ostream& out, const std::vector<ProcUsage>& usage);
void print_figures(std::ostream& out, const std::vector<Figure>& figures);

// "1.23 ms" / "456 us" for a latency in microseconds.
std::string format_us(double us);

}  // namespace op::bench
