// The broker alone: P publishers (each its own bus Publisher, i.e. its own connection),
// each publishing fresh, valid OrderPlaced events and keeping up to W of them unacknowledged
// (an ack: appended and fdatasynced). No HTTP, no services: with W = 1 this is what one
// durable publish costs; with W > 1 (pipelined, as RabbitMQ's confirms and JetStream's async
// publishes are measured) what the bus and its group commit can carry.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <vector>

#include "latency.hpp"
#include "proc_stats.hpp"

namespace op::bench {

struct BrokerRun {
    int publishers = 0;
    int window = 1;  // publishes each publisher keeps unacknowledged
    double wall_s = 0;
    std::uint64_t acked = 0;
    std::uint64_t failed = 0;  // anything but a durable ack
    Percentiles round_trip;    // publish -> ack
    std::vector<ProcUsage> usage;
    double acked_per_s() const { return wall_s > 0 ? acked / wall_s : 0; }
};

// Starts a broker (through the test harness, fresh data dir) for each publisher count and
// runs each for `duration`.
std::vector<BrokerRun> run_broker_bench(const std::vector<int>& publisher_counts, int window,
                                        std::chrono::milliseconds duration);

nlohmann::json to_json(const BrokerRun& r);

}  // namespace op::bench
