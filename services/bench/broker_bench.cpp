#include "broker_bench.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <future>
#include <thread>

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
    std::vector<std::unique_ptr<bus::Publisher>> clients;
    for (int i = 0; i < publishers; ++i)
        clients.push_back(std::make_unique<bus::Publisher>(broker));
    // One publish each first, so every connection is up before the clock starts.
    for (auto& c : clients) c->publish(sample_order()).get();

    std::atomic<std::uint64_t> acked{0};
    std::vector<LatencySamples> samples(static_cast<std::size_t>(publishers));
    std::vector<std::uint64_t> failed(static_cast<std::size_t>(publishers), 0);
    ProcWatch watch({{"broker", broker_pid}, {"bench", ::getpid()}});
    watch.begin();
    const auto start = Clock::now();
    const auto end = start + duration;
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
        std::vector<std::thread> threads;
        for (int i = 0; i < publishers; ++i) {
            threads.emplace_back([&, i] {
                auto& mine = samples[static_cast<std::size_t>(i)];
                auto& client = *clients[static_cast<std::size_t>(i)];
                mine.reserve(1 << 16);
                // Oldest first; each resolves in the order it was sent.
                std::deque<std::pair<Clock::time_point, std::future<bus::PublishResult>>> open;
                std::vector<events::Event> batch;
                for (;;) {
                    const bool sending = Clock::now() < end && !stop_requested();
                    // The window refills with every publish whose ack came, queued at once
                    // so they leave together, as a client with that many in flight would.
                    if (sending && open.size() < static_cast<std::size_t>(window)) {
                        const auto sent_at = Clock::now();
                        batch.clear();
                        while (open.size() + batch.size() < static_cast<std::size_t>(window)) {
                            batch.push_back(sample_order());
                        }
                        for (auto& f : client.publish_many(batch)) {
                            open.emplace_back(sent_at, std::move(f));
                        }
                    }
                    if (open.empty()) break;
                    do {
                        const auto result = open.front().second.get();
                        if (result.status == bus::PublishStatus::Appended) {
                            mine.add(Clock::now() - open.front().first);
                            ++acked;
                        } else {
                            ++failed[static_cast<std::size_t>(i)];
                        }
                        open.pop_front();
                    } while (!open.empty() && open.front().second.wait_for(
                                                  std::chrono::seconds(0)) ==
                                                  std::future_status::ready);
                }
            });
        }
        for (auto& t : threads) t.join();
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
