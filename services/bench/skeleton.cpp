#include "skeleton.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "floor.hpp"
#include "op/events/codec.hpp"
#include "sample_order.hpp"
#include "stop.hpp"
#include "support/harness.hpp"
#include "synced_appender.hpp"

namespace op::bench {
namespace {

using Clock = std::chrono::steady_clock;

// A message is an event-sized buffer: byte 0 counts the appends made of it so far, the next 8
// bytes number it (so a late answer to an earlier one is told apart), the rest is padding to
// the size of a real OrderPlaced.
constexpr std::size_t kHeaderBytes = 1 + sizeof(std::uint64_t);

std::string hop_name(int i) { return "hop" + std::to_string(i); }

std::string event_sized_message() {
    events::Event e = sample_order();
    e.seq = 123456;
    std::string m(std::max(events::encode(e).size(), kHeaderBytes), 'x');
    m[0] = 0;
    return m;
}

std::uint64_t number_of(const zmq::message_t& m) {
    std::uint64_t n = 0;
    if (m.size() >= kHeaderBytes) std::memcpy(&n, m.data<char>() + 1, sizeof n);
    return n;
}

}  // namespace

int run_skeleton_relay(const std::string& endpoint, int appends,
                       const std::filesystem::path& file) {
    SyncedAppender log(file);
    zmq::context_t ctx(1);
    zmq::socket_t router(ctx, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.bind(endpoint);
    std::vector<zmq::message_t> msg;
    poll_until(router, stopped_or_orphaned(), [&] {
        for (;;) {
            msg.clear();
            if (!zmq::recv_multipart(router, std::back_inserter(msg), zmq::recv_flags::dontwait))
                return;
            if (msg.size() != 2 || msg[1].size() < kHeaderBytes) continue;
            auto* body = msg[1].data<char>();
            const int made = body[0] + 1;
            body[0] = static_cast<char>(made);
            log.append(msg[1].to_string_view());
            // A message for a hop not connected yet is dropped; bench sends again until one
            // comes back (measure_skeleton).
            const std::string next = hop_name(made >= appends ? 0 : made);
            std::array<zmq::const_buffer, 2> frames = {zmq::buffer(next),
                                                       zmq::buffer(msg[1].data(), msg[1].size())};
            zmq::send_multipart(router, frames);
        }
    });
    return 0;
}

int run_skeleton_hop(const std::string& endpoint, const std::string& name) {
    zmq::context_t ctx(1);
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::routing_id, name);
    dealer.connect(endpoint);
    echo_until(dealer, stopped_or_orphaned());
    return 0;
}

Percentiles measure_skeleton(const std::filesystem::path& dir, int appends,
                             std::chrono::milliseconds budget) {
    if (appends < 1) throw std::invalid_argument("skeleton: at least one append");
    const std::string endpoint = test::free_tcp_endpoint();
    const std::string tag = "bench-skeleton-" + std::to_string(appends);
    std::vector<test::Process> helpers;
    helpers.emplace_back(std::vector<std::string>{"/proc/self/exe", "--skeleton-relay", endpoint,
                                                  std::to_string(appends),
                                                  (dir / (tag + ".log")).string()},
                         dir / (tag + "-relay.out"));
    for (int i = 1; i < appends; ++i) {
        helpers.emplace_back(
            std::vector<std::string>{"/proc/self/exe", "--skeleton-hop", endpoint, hop_name(i)},
            dir / (tag + "-" + hop_name(i) + ".out"));
    }
    // Each Process stops its program when destroyed; this also removes the logs of those that
    // stopped cleanly, however the measuring ends.
    struct StopHelpers {
        std::vector<test::Process>& helpers;
        ~StopHelpers() {
            for (auto& p : helpers) {
                if (p.terminate(std::chrono::seconds(5)) == 0) {
                    std::error_code ignored;
                    std::filesystem::remove(p.log_path(), ignored);
                }
            }
        }
    } stop_helpers{helpers};

    zmq::context_t ctx(1);
    zmq::socket_t client(ctx, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    client.set(zmq::sockopt::routing_id, hop_name(0));
    client.connect(endpoint);
    std::uint64_t number = 0;
    std::string message = event_sized_message();
    // Sends message `number` and waits up to `wait` for it to come back; answers to earlier
    // messages (sent again meanwhile) are let go.
    auto send_and_wait = [&](std::chrono::milliseconds wait) {
        ++number;
        std::memcpy(message.data() + 1, &number, sizeof number);
        client.send(zmq::buffer(message));
        const auto deadline = Clock::now() + wait;
        zmq::message_t reply;
        for (;;) {
            zmq::pollitem_t item{client.handle(), 0, ZMQ_POLLIN, 0};
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) return false;
            try {
                zmq::poll(&item, 1, left);
            } catch (const zmq::error_t& e) {
                if (e.num() != EINTR) throw;
            }
            throw_if_stopped();
            while (client.recv(reply, zmq::recv_flags::dontwait)) {
                if (number_of(reply) == number) return true;
            }
        }
    };
    // Until every hop has connected, messages to it are dropped: send again until one returns.
    const auto ready_by = Clock::now() + std::chrono::seconds(10);
    while (!send_and_wait(std::chrono::milliseconds(200))) {
        if (Clock::now() > ready_by) {
            throw std::runtime_error(
                "floor: the skeleton (bench --skeleton-relay/--skeleton-hop at " + endpoint +
                ") answered nothing within 10 s; see " + dir.string() + "/" + tag + "-*.out");
        }
    }
    LatencySamples samples;
    const auto end = Clock::now() + budget;
    int warmup = 20;
    while ((Clock::now() < end || samples.size() < 10) && !stop_requested()) {
        const auto t0 = Clock::now();
        if (!send_and_wait(std::chrono::seconds(10))) {
            throw std::runtime_error("floor: a message through the skeleton at " + endpoint +
                                     " did not come back within 10 s");
        }
        if (warmup > 0) {
            --warmup;
            continue;
        }
        samples.add(Clock::now() - t0);
    }
    return samples.summarize();
}

}  // namespace op::bench
