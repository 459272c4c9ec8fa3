#include "compare.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "latency.hpp"
#include "report.hpp"

namespace op::bench {
namespace {

// A stock neither system can run out of within a run, as the seed's README measured with.
constexpr std::int64_t kOriginalStock = 10'000'000;

}  // namespace

CompareRun compare_once(const Target& ours, const std::filesystem::path& original_dir,
                        const LoadOptions& load) {
    CompareRun run;
    run.connections = load.concurrency;
    {
        OriginalSystem original(original_dir, kOriginalStock);
        LoadOptions o = load;
        o.label = fmt::format("original, {} conn", load.concurrency);
        o.host = "127.0.0.1";
        o.port = original.port();
        o.keep_answers = false;
        ProcWatch watch(original.processes());
        watch.begin();
        run.original = run_http_load(o);
        run.original_usage = watch.end(run.original.wall_s);
        run.audit = original.audit(run.original.succeeded);
    }
    LoadOptions o = load;
    o.label = fmt::format("ours, {} conn", load.concurrency);
    run.ours = run_against(ours, o);
    return run;
}

void print_comparison(std::ostream& out,
                      const std::vector<std::vector<CompareRun>>& by_connections) {
    fmt::print(out, "\nside by side with the original (same load; medians over {} run(s) each)\n",
               by_connections.empty() ? 0 : by_connections.front().size());
    fmt::print(out,
               "{:>5} | {:>9} {:>9} {:>9} {:>8} {:>7} {:>8} | {:>9} {:>9} {:>9} {:>7} | "
               "{:>8}\n",
               "conn", "orig/s", "p50", "p99", "errors", "lost", "orders", "ours/s", "p50", "p99",
               "errors", "ratio");
    for (const auto& runs : by_connections) {
        if (runs.empty()) continue;
        std::vector<double> orig_rate, orig_p50, orig_p99, ours_rate, ours_p50, ours_p99;
        std::uint64_t orig_errors = 0, orig_sent = 0, lost = 0, ours_errors = 0, ours_sent = 0;
        bool corrupt = false;
        for (const auto& r : runs) {
            orig_rate.push_back(r.original.answered_per_s());
            orig_p50.push_back(r.original.decision.p50_us);
            orig_p99.push_back(r.original.decision.p99_us);
            ours_rate.push_back(r.ours.load.answered_per_s());
            ours_p50.push_back(r.ours.load.decision.p50_us);
            ours_p99.push_back(r.ours.load.decision.p99_us);
            orig_errors += r.original.error_count;
            orig_sent += r.original.sent;
            lost += r.audit.lost;
            corrupt = corrupt || !r.audit.orders_file_valid;
            ours_errors += r.ours.load.error_count + r.ours.problems.size();
            ours_sent += r.ours.load.sent;
        }
        const double orig = median(orig_rate);
        const double mine = median(ours_rate);
        fmt::print(out,
                   "{:>5} | {:>9.0f} {:>9} {:>9} {:>7.0f}% {:>7} {:>8} | {:>9.0f} {:>9} "
                   "{:>9} {:>7} | {:>7.0f}x\n",
                   runs.front().connections, orig, format_us(median(orig_p50)),
                   format_us(median(orig_p99)), orig_sent ? 100.0 * orig_errors / orig_sent : 0.0,
                   lost, corrupt ? "CORRUPT" : "intact", mine, format_us(median(ours_p50)),
                   format_us(median(ours_p99)), ours_errors, orig > 0 ? mine / orig : 0.0);
    }
    fmt::print(out,
               "orig/s, ours/s: decided answers per second; errors: the original's share of "
               "requests not answered 2xx (ours: count, including failed checks); lost: orders "
               "it answered success but did not keep; orders: orders.json afterwards.\n");
}

nlohmann::json to_json(const CompareRun& r) {
    auto original = to_json(r.original);
    original["audit"] = to_json(r.audit);
    original["processes"] = to_json(r.original_usage);
    return {{"connections", r.connections}, {"original", original}, {"ours", to_json(r.ours)}};
}

}  // namespace op::bench
