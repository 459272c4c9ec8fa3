// The broker alone: P publishers (each its own bus Publisher, i.e. its own connection),
// each publishing a fresh, valid OrderPlaced and waiting for its ack (appended and
// fdatasynced) before the next. No HTTP, no services: this is what the bus and its group
// commit can carry, and what one durable publish costs.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <vector>

#include "latency.hpp"
#include "proc_stats.hpp"

namespace op::bench {

struct BrokerRun {
    int publishers = 0;
    double wall_s = 0;
    std::uint64_t acked = 0;
    std::uint64_t failed = 0;  // anything but a durable ack
    Percentiles round_trip;    // publish -> ack
    std::vector<ProcUsage> usage;
    double acked_per_s() const { return wall_s > 0 ? acked / wall_s : 0; }
};

// Starts a broker (through the test harness, fresh data dir) for each publisher count and
// runs each for `duration`.
std::vector<BrokerRun> run_broker_bench(const std::vector<int>& publisher_counts,
                                        std::chrono::milliseconds duration);

nlohmann::json to_json(const BrokerRun& r);

}  // namespace op::bench
