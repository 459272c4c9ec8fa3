#include "growth.hpp"

#include <atomic>
#include <chrono>
#include <ostream>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "op/events/codec.hpp"
#include "op/events/ids.hpp"
#include "op/log/segment_log.hpp"
#include "proc_stats.hpp"
#include "progress.hpp"
#include "stop.hpp"
#include "support/harness.hpp"

namespace op::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// N OrderPlaced events as the broker would have appended them, synced in groups.
std::uint64_t write_log(const std::filesystem::path& dir, std::uint64_t events) {
    log::SegmentLog log(log::LogOptions{dir, 64ull << 20, true});
    std::atomic<std::uint64_t> bytes{0};  // read by the progress bar's thread
    std::atomic<std::uint64_t> written{0};
    ProgressBar bar(
        fmt::format("writing {} events", events),
        [&] { return static_cast<double>(written.load()) / static_cast<double>(events); },
        [&] { return fmt::format("{} MiB", bytes.load() >> 20); });
    for (std::uint64_t seq = 1; seq <= events; ++seq) {
        events::Event e;
        e.order_id = fmt::format("{:032x}", seq * 0x9e3779b97f4a7c15ull);
        e.id = events::derived_id(e.order_id, "OrderPlaced");
        e.ts = "2026-11-26T08:00:00.000000Z";
        e.seq = seq;
        e.data = events::OrderPlaced{"phone", 1, 100000, "growth@example.com"};
        const std::string json = events::encode(e);
        bytes += json.size() + log::SegmentLog::kHeaderBytes;
        log.append(json);
        if (seq % 10000 == 0) {
            log.sync();
            written = seq;
            throw_if_stopped();
        }
    }
    log.sync();
    written = events;
    return bytes;
}

// Starts the broker on the system's data dir and returns {seconds to ready, RSS once ready}.
std::pair<double, long> start_broker(test::System& system) {
    const auto t = Clock::now();
    system.start("broker");
    const double took = seconds_since(t);
    const auto sample = sample_process(system.process("broker").pid());
    if (system.stop("broker") != 0) {
        throw std::runtime_error("the broker did not stop cleanly: " +
                                 system.log_tail("broker", 5));
    }
    return {took, sample ? sample->rss_kib : 0};
}

}  // namespace

std::vector<GrowthRun> run_growth(const std::vector<std::uint64_t>& sizes, std::ostream& out) {
    std::vector<GrowthRun> runs;
    for (const auto events : sizes) {
        test::TempDir dir("op-bench-growth");
        GrowthRun run;
        run.events = events;
        const auto t = Clock::now();
        run.log_bytes = write_log(dir.path() / "broker" / "log", events);
        run.write_s = seconds_since(t);
        test::SystemOptions options;
        options.start_timeout = std::chrono::minutes(30);
        test::System system(dir.path(), options);
        std::tie(run.first_start_s, run.first_rss_kib) = start_broker(system);
        std::tie(run.start_s, run.rss_kib) = start_broker(system);
        fmt::print(out, "  {} events: first start {:.2f} s, then {:.2f} s, RSS {:.1f} MiB\n",
                   events, run.first_start_s, run.start_s, run.rss_kib / 1024.0);
        runs.push_back(run);
    }
    return runs;
}

void print_growth(std::ostream& out, const std::vector<GrowthRun>& runs) {
    fmt::print(out, "\nbroker start and memory by log size (a log of OrderPlaced events):\n");
    fmt::print(out, "  {:>10}  {:>10}  {:>14}  {:>12}  {:>14}  {:>10}\n", "events", "log MiB",
               "first start s", "first RSS MiB", "later start s", "RSS MiB");
    for (const auto& r : runs) {
        fmt::print(out, "  {:>10}  {:>10.0f}  {:>14.2f}  {:>12.1f}  {:>14.2f}  {:>10.1f}\n",
                   r.events, r.log_bytes / 1048576.0, r.first_start_s, r.first_rss_kib / 1024.0,
                   r.start_s, r.rss_kib / 1024.0);
    }
}

nlohmann::json to_json(const std::vector<GrowthRun>& runs) {
    auto j = nlohmann::json::array();
    for (const auto& r : runs) {
        j.push_back({{"events", r.events},
                     {"log_bytes", r.log_bytes},
                     {"write_s", r.write_s},
                     {"first_start_s", r.first_start_s},
                     {"first_rss_kib", r.first_rss_kib},
                     {"start_s", r.start_s},
                     {"rss_kib", r.rss_kib}});
    }
    return j;
}

}  // namespace op::bench
