// The floor: what this machine's disk and loopback cost at the least, measured in the same run
// as the system, and the latency bound they put on one order. A decision needs three durable
// appends (OrderPlaced, PaymentVerified, StockReserved), the whole chain five (+ Shipped,
// CustomerNotified); each append is at least one ZeroMQ round trip plus one fdatasync.
//
// The probes run with every core kept busy by low-priority spinners. On a VM an idle vCPU may
// only notice an I/O completion at the host's next timer tick (on this project's 2-core VM:
// fdatasync 4.0 ms with the cores idle, ~0.3-0.5 ms with them busy), and that is the VM's
// wake-up latency, not the disk's: a loaded system never idles. The idle figure is reported
// beside it.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "latency.hpp"

namespace op::bench {

struct FloorResult {
    Percentiles fdatasync;       // append a record-sized write, then fdatasync; cores busy
    Percentiles fdatasync_idle;  // the same with the cores left idle (for comparison only)
    Percentiles zmq_rtt;         // DEALER -> ROUTER -> DEALER on loopback, event-sized message
    std::size_t message_bytes = 0;
    double append_us() const { return fdatasync.p50_us + zmq_rtt.p50_us; }
    double decision_bound_us() const { return 3 * append_us(); }
    double chain_bound_us() const { return 5 * append_us(); }
};

// `dir` is where the system keeps its log (the probe file is created and removed there).
FloorResult measure_floor(const std::filesystem::path& dir, std::chrono::milliseconds per_probe);

nlohmann::json to_json(const FloorResult& f);

}  // namespace op::bench
