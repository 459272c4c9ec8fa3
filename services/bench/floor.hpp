// The floor: what this machine's disk and loopback cost at the least, measured in the same run
// as the system, and the latency bound they put on one order. A decision needs three durable
// appends (OrderPlaced, PaymentVerified, StockReserved), the whole chain five (+ Shipped,
// CustomerNotified); each append is at least one ZeroMQ round trip plus one fdatasync.
//
// The round trip is between two processes, each with its own ZeroMQ context (the issue's
// "ZeroMQ round trip between two processes"): every hop of an order crosses from one of the
// system's processes to another, each side's message passing through its own I/O thread.
// Until cd42ecc the probe ran both ends as two threads of one process sharing one I/O thread,
// which crosses one I/O thread fewer each way. It is still measured and printed, beside the
// bound, not in it: in the first suite with both, the two-process probe read p50 62-78 us and
// the one-process probe 40-55 us, but 86 us in the suite's first floor (a suite's first probe
// has often been slow).
//
// Each floor also runs the skeleton of an order's path (skeleton.hpp): the same appends through
// as many processes, none of the system's work. It is printed beside the bound, not in it.

#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "latency.hpp"

namespace op::bench {

struct FloorResult {
    Percentiles fdatasync;       // write a record as the log does, then fdatasync; cores busy
    Percentiles fdatasync_idle;  // the same with the cores left idle
    Percentiles zmq_rtt;  // DEALER -> ROUTER -> DEALER on loopback, event-sized, two processes
    Percentiles zmq_rtt_one_process;  // the same between two threads of one process
    // The same path through the same processes with none of the system's work (skeleton.hpp),
    // cores idle as in the idle runs: 3 appends through 4 processes, and 5 through 6.
    Percentiles skeleton_decision;
    Percentiles skeleton_chain;
    std::size_t message_bytes = 0;
    double fdatasync_us() const { return std::min(fdatasync.p50_us, fdatasync_idle.p50_us); }
    double append_us() const { return fdatasync_us() + zmq_rtt.p50_us; }
    double decision_bound_us() const { return 3 * append_us(); }
    double chain_bound_us() const { return 5 * append_us(); }
};

// `dir` is where the system keeps its log (the probe file is created and removed there).
FloorResult measure_floor(const std::filesystem::path& dir, std::chrono::milliseconds per_probe);

nlohmann::json to_json(const FloorResult& f);

// The loop of bench's helper sides (the round-trip echo, the skeleton's relay and hops): waits
// on `socket` up to 50 ms at a time, calling `on_readable` when something came, until `stop`.
void poll_until(zmq::socket_t& socket, const std::function<bool()>& stop,
                const std::function<void()>& on_readable);

// `stop` for a helper process bench started: SIGTERM, or the bench that started it gone.
std::function<bool()> stopped_or_orphaned();

// Sends back whatever `socket` receives (a ROUTER to each sender, a DEALER to its peer), until
// `stop`.
void echo_until(zmq::socket_t& socket, const std::function<bool()>& stop);

// The other process of the round-trip probe (bench --zmq-echo ENDPOINT): binds a ROUTER at
// `endpoint` and sends back what it receives until SIGTERM or until its parent exits.
int run_zmq_echo(const std::string& endpoint);

}  // namespace op::bench
