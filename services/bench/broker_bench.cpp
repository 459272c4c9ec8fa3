#include "broker_bench.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>

#include <zmq.hpp>

#include "op/bus/publisher.hpp"
#include "op/events/ids.hpp"
#include "progress.hpp"
#include "sample_order.hpp"
#include "stop.hpp"
#include "support/harness.hpp"

namespace op::bench {
namespace {

using Clock = std::chrono::steady_clock;

BrokerRun run_once(const bus::Endpoints& broker, pid_t broker_pid, int publishers, int window,
                   std::chrono::milliseconds duration) {
    BrokerRun run;
    run.publishers = publishers;
    run.window = window;
    // One ZeroMQ I/O thread for all of them, as one process with many publishers would have:
    // a context each gave bench 64 more threads to wake than the broker has.
    zmq::context_t context(1);
    std::vector<std::unique_ptr<bus::Publisher>> clients;
    for (int i = 0; i < publishers; ++i) {
        bus::PublisherOptions options;
        options.context = &context;
        clients.push_back(std::make_unique<bus::Publisher>(broker, options));
    }
    // One publish each first, so every connection is up before the clock starts.
    for (auto& c : clients) c->publish(sample_order()).get();

    std::atomic<std::uint64_t> acked{0};
    std::vector<LatencySamples> samples(static_cast<std::size_t>(publishers));
    std::vector<std::uint64_t> failed(static_cast<std::size_t>(publishers), 0);
    // Publishes not yet answered, over all publishers; the run ends when it reaches 0.
    std::atomic<std::int64_t> open{0};
    std::mutex done_mu;
    std::condition_variable done_cv;
    ProcWatch watch({{"broker", broker_pid}, {"bench", ::getpid()}});
    watch.begin();
    const auto start = Clock::now();
    const auto end = start + duration;

    // Each publisher keeps `window` publishes in flight: every ack, in its callback on that
    // publisher's I/O thread, sends the next one. A client with that many in flight would do
    // the same; and the generator stays light (no thread or promise per publisher waiting for
    // each ack), so what saturates is the broker. Those sent from one ACKS frame's callbacks
    // leave together in one PUBS frame. Samples and counts of publisher i are touched only on
    // its I/O thread.
    std::function<void(std::size_t)> send_next = [&](std::size_t i) {
        const auto sent_at = Clock::now();
        clients[i]->publish_then(
            sample_order(), bus::Publisher::Deadline::max(), bus::WhenUnavailable::Retry,
            [&, i, sent_at](bus::PublishResult result) {
                if (result.status == bus::PublishStatus::Appended) {
                    samples[i].add(Clock::now() - sent_at);
                    ++acked;
                } else {
                    ++failed[i];
                }
                if (result.status != bus::PublishStatus::Stopped && Clock::now() < end &&
                    !stop_requested()) {
                    send_next(i);  // counted as open still: one ends, one begins
                    return;
                }
                if (open.fetch_sub(1) == 1) {
                    std::lock_guard lock(done_mu);
                    done_cv.notify_all();
                }
            });
    };
    {
        ProgressBar bar(
            fmt::format("broker, {} publishers", publishers),
            [&] {
                return std::chrono::duration<double>(Clock::now() - start) /
                       std::chrono::duration<double>(duration);
            },
            [&] {
                const double s = std::chrono::duration<double>(Clock::now() - start).count();
                return fmt::format("{} acked, {:.0f}/s", acked.load(),
                                   s > 0 ? acked.load() / s : 0.0);
            });
        for (std::size_t i = 0; i < clients.size(); ++i) samples[i].reserve(1 << 16);
        open = static_cast<std::int64_t>(clients.size()) * window;
        for (std::size_t i = 0; i < clients.size(); ++i) {
            for (int w = 0; w < window; ++w) send_next(i);
        }
        std::unique_lock lock(done_mu);
        // Stops by itself: every open publish resolves (acked, refused, or Stopped below).
        while (!done_cv.wait_until(lock, end + std::chrono::seconds(30),
                                   [&] { return open.load() == 0; })) {
            lock.unlock();
            for (auto& c : clients) c->stop();
            lock.lock();
        }
    }
    run.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    run.usage = watch.end(run.wall_s);
    LatencySamples all;
    for (auto& s : samples) all.merge(s);
    for (auto f : failed) run.failed += f;
    run.acked = acked.load();
    run.round_trip = all.summarize();
    for (auto& c : clients) c->stop();
    throw_if_stopped();
    return run;
}

}  // namespace

std::vector<BrokerRun> run_broker_bench(const std::vector<int>& publisher_counts, int window,
                                        std::chrono::milliseconds duration) {
    std::vector<BrokerRun> runs;
    for (int publishers : publisher_counts) {
        // A fresh broker per run: each starts on an empty log, none pays for another's.
        test::System system;
        system.start("broker");
        // The replay tool's identity: the policy lets it publish OrderPlaced.
        runs.push_back(run_once(system.client("replay"), system.process("broker").pid(),
                                publishers, window, duration));
    }
    return runs;
}

nlohmann::json to_json(const BrokerRun& r) {
    return {{"publishers", r.publishers},
            {"window", r.window},
            {"wall_s", r.wall_s},
            {"acked", r.acked},
            {"failed", r.failed},
            {"acked_per_s", r.acked_per_s()},
            {"round_trip", to_json(r.round_trip)},
            {"processes", to_json(r.usage)}};
}

}  // namespace op::bench
