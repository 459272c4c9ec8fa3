// How the broker's cost grows with its log: for each size, a log of that many events is
// written straight into a fresh data dir (through the segment log, as the broker writes it),
// then the real broker is started on it twice. The first start indexes a log it has never seen
// (its id index has no runs yet); the second is every later start. Each reports the time to
// "broker ready" and the broker's RSS once ready.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <vector>

#include <nlohmann/json.hpp>

namespace op::bench {

struct GrowthRun {
    std::uint64_t events = 0;
    std::uint64_t log_bytes = 0;
    double write_s = 0;
    double first_start_s = 0;
    long first_rss_kib = 0;
    double start_s = 0;  // the second start: what every restart costs
    long rss_kib = 0;
};

std::vector<GrowthRun> run_growth(const std::vector<std::uint64_t>& sizes, std::ostream& out);
void print_growth(std::ostream& out, const std::vector<GrowthRun>& runs);
nlohmann::json to_json(const std::vector<GrowthRun>& runs);

}  // namespace op::bench
