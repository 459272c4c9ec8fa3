#include "floor.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "op/events/codec.hpp"
#include "op/events/ids.hpp"
#include "progress.hpp"
#include "sample_order.hpp"
#include "skeleton.hpp"
#include "stop.hpp"
#include "synced_appender.hpp"
#include "support/harness.hpp"

namespace op::bench {
namespace {

using Clock = std::chrono::steady_clock;

// A real OrderPlaced as the broker would append it (with its seq): the size the bus carries.
std::string sample_event() {
    events::Event e = sample_order();
    e.seq = 123456;
    return events::encode(e);
}

Percentiles probe_fdatasync(const std::filesystem::path& dir, std::chrono::milliseconds budget,
                            std::size_t record_bytes) {
    SyncedAppender file(dir / "bench-fdatasync-probe");
    const std::string record(record_bytes, 'x');
    LatencySamples samples;
    const auto end = Clock::now() + budget;
    while ((Clock::now() < end || samples.size() < 10) && !stop_requested()) {
        const auto t0 = Clock::now();
        file.append(record);
        samples.add(Clock::now() - t0);
    }
    return samples.summarize();
}

// Round trips of `message` from a DEALER on this thread to an echoing ROUTER at `endpoint`.
// The first exchange waits (up to 10 s) for the connection; it and the next 20 are not counted.
Percentiles measure_round_trips(zmq::context_t& ctx, const std::string& endpoint,
                                const std::string& message, std::chrono::milliseconds budget) {
    zmq::socket_t client(ctx, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    client.connect(endpoint);
    client.send(zmq::buffer(message));
    zmq::pollitem_t item{client.handle(), 0, ZMQ_POLLIN, 0};
    const auto connect_deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
        try {
            if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) > 0) break;
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
        }
        throw_if_stopped();
        if (Clock::now() > connect_deadline) {
            throw std::runtime_error("floor: no echo from " + endpoint +
                                     " within 10 s (is the port free? is bench --zmq-echo "
                                     "runnable?)");
        }
    }
    zmq::message_t reply;
    (void)client.recv(reply);
    LatencySamples samples;
    const auto end = Clock::now() + budget;
    int warmup = 20;
    while ((Clock::now() < end || samples.size() < 10) && !stop_requested()) {
        const auto t0 = Clock::now();
        client.send(zmq::buffer(message));
        (void)client.recv(reply);
        if (warmup > 0) {
            --warmup;
            continue;
        }
        samples.add(Clock::now() - t0);
    }
    return samples.summarize();
}

// Both ends in this process, on two threads sharing one ZeroMQ I/O thread: no system hop
// crosses so little, which is why it is reported but is not the bound.
Percentiles probe_zmq_rtt_one_process(const std::string& message,
                                      std::chrono::milliseconds budget) {
    zmq::context_t ctx(1);
    const std::string endpoint = test::free_tcp_endpoint();
    zmq::socket_t server(ctx, zmq::socket_type::router);
    server.set(zmq::sockopt::linger, 0);
    server.bind(endpoint);
    std::atomic<bool> stop{false};
    std::thread echo([&] { echo_until(server, [&] { return stop.load(); }); });
    struct StopEcho {  // however the measuring ends
        std::atomic<bool>& stop;
        std::thread& echo;
        ~StopEcho() {
            stop = true;
            echo.join();
        }
    } stop_echo{stop, echo};
    return measure_round_trips(ctx, endpoint, message, budget);
}

// The echo in a process of its own (this program again, with --zmq-echo), each end with its
// own context and I/O thread: what one hop between two of the system's processes crosses.
Percentiles probe_zmq_rtt_two_processes(const std::filesystem::path& dir,
                                        const std::string& message,
                                        std::chrono::milliseconds budget) {
    const std::string endpoint = test::free_tcp_endpoint();
    const auto log = dir / "bench-zmq-echo.log";
    test::Process echo({"/proc/self/exe", "--zmq-echo", endpoint}, log);
    zmq::context_t ctx(1);
    auto result = measure_round_trips(ctx, endpoint, message, budget);
    const int status = echo.terminate(std::chrono::seconds(5));
    if (status == 0) std::filesystem::remove(log);
    return result;
}

// One spinning thread per core, at the lowest priority, for as long as it lives: the probes
// preempt them at once when woken, and no vCPU ever goes idle meanwhile (see floor.hpp).
class KeepCoresAwake {
public:
    KeepCoresAwake() {
        const unsigned n = std::max(1u, std::thread::hardware_concurrency());
        for (unsigned i = 0; i < n; ++i) {
            threads_.emplace_back([this] {
                ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
                while (!stop_.load(std::memory_order_relaxed)) {
                }
            });
        }
    }
    ~KeepCoresAwake() {
        stop_ = true;
        for (auto& t : threads_) t.join();
    }
    KeepCoresAwake(const KeepCoresAwake&) = delete;
    KeepCoresAwake& operator=(const KeepCoresAwake&) = delete;

private:
    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
};

}  // namespace

FloorResult measure_floor(const std::filesystem::path& dir, std::chrono::milliseconds per_probe) {
    FloorResult f;
    const std::string message = sample_event();
    f.message_bytes = message.size();
    const auto start = Clock::now();
    ProgressBar bar(
        "floor (fdatasync, zmq rtt, skeleton)",
        [&] {
            return std::chrono::duration<double>(Clock::now() - start) /
                   std::chrono::duration<double>(6 * per_probe);
        },
        [] { return std::string(); });
    f.fdatasync_idle = probe_fdatasync(dir, per_probe, message.size() + 8);
    {
        KeepCoresAwake awake;
        f.fdatasync = probe_fdatasync(dir, per_probe, message.size() + 8);
        f.zmq_rtt = probe_zmq_rtt_two_processes(dir, message, per_probe);
        f.zmq_rtt_one_process = probe_zmq_rtt_one_process(message, per_probe);
    }
    f.skeleton_decision = measure_skeleton(dir, 3, per_probe);
    f.skeleton_chain = measure_skeleton(dir, 5, per_probe);
    throw_if_stopped();
    return f;
}

nlohmann::json to_json(const FloorResult& f) {
    return {
        {"fdatasync", to_json(f.fdatasync)},   {"fdatasync_idle_cores", to_json(f.fdatasync_idle)},
        {"zmq_rtt", to_json(f.zmq_rtt)},
        {"zmq_rtt_one_process", to_json(f.zmq_rtt_one_process)},
        {"message_bytes", f.message_bytes},
        {"fdatasync_bound_us", f.fdatasync_us()}, {"append_bound_us", f.append_us()},
        {"decision_bound_us", f.decision_bound_us()},
        {"chain_bound_us", f.chain_bound_us()},
        {"skeleton_decision", to_json(f.skeleton_decision)},
        {"skeleton_chain", to_json(f.skeleton_chain)}};
}

void poll_until(zmq::socket_t& socket, const std::function<bool()>& stop,
                const std::function<void()>& on_readable) {
    while (!stop()) {
        zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
        try {
            zmq::poll(&item, 1, std::chrono::milliseconds(50));
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) continue;
            throw;
        }
        if (item.revents & ZMQ_POLLIN) on_readable();
    }
}

std::function<bool()> stopped_or_orphaned() {
    return [parent = ::getppid()] { return stop_requested() || ::getppid() != parent; };
}

void echo_until(zmq::socket_t& socket, const std::function<bool()>& stop) {
    std::vector<zmq::message_t> msg;
    poll_until(socket, stop, [&] {
        for (;;) {
            msg.clear();
            if (!zmq::recv_multipart(socket, std::back_inserter(msg), zmq::recv_flags::dontwait))
                return;
            zmq::send_multipart(socket, msg);
        }
    });
}

int run_zmq_echo(const std::string& endpoint) {
    zmq::context_t ctx(1);
    zmq::socket_t server(ctx, zmq::socket_type::router);
    server.set(zmq::sockopt::linger, 0);
    server.bind(endpoint);
    echo_until(server, stopped_or_orphaned());
    return 0;
}

}  // namespace op::bench
