// The floor: what this machine's disk and loopback cost at the least, measured in the same run
// as the system, and the latency bound they put on one order. A decision needs three durable
// appends (OrderPlaced, PaymentVerified, StockReserved), the whole chain five (+ Shipped,
// CustomerNotified); each append is at least one ZeroMQ round trip plus one fdatasync.
#pragma once

#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "latency.hpp"

namespace op::bench {

struct FloorResult {
    Percentiles fdatasync;  // append a record-sized write, then fdatasync, at random moments
    Percentiles zmq_rtt;    // DEALER -> ROUTER -> DEALER on loopback, event-sized message
    std::size_t message_bytes = 0;
    double append_us() const { return fdatasync.p50_us + zmq_rtt.p50_us; }
    double decision_bound_us() const { return 3 * append_us(); }
    double chain_bound_us() const { return 5 * append_us(); }
};

// `dir` is where the system keeps its log (the probe file is created and removed there).
FloorResult measure_floor(const std::filesystem::path& dir, std::chrono::milliseconds per_probe);

nlohmann::json to_json(const FloorResult& f);

}  // namespace op::bench
