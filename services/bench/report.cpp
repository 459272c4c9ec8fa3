#include "report.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

namespace op::bench {

std::string format_us(double us) {
    if (us >= 1000) return fmt::format("{:.2f} ms", us / 1000);
    return fmt::format("{:.0f} us", us);
}

namespace {

std::string latency_line(const Percentiles& p) {
    if (p.count == 0) return "no samples";
    return fmt::format("p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})", format_us(p.p50_us),
                       format_us(p.p90_us), format_us(p.p99_us), format_us(p.p999_us),
                       format_us(p.max_us), p.count);
}

std::string counts(const std::map<std::string, std::uint64_t>& m) {
    if (m.empty()) return "none";
    std::string out;
    for (const auto& [k, v] : m) out += fmt::format("{}{}: {}", out.empty() ? "" : ", ", k, v);
    return out;
}

std::string format_value(double v, const std::string& unit) {
    if (unit == "us") return format_us(v);
    if (unit == "x") return fmt::format("{:.2f}x", v);
    if (v >= 100) return fmt::format("{:.0f} {}", v, unit);
    return fmt::format("{:.2f} {}", v, unit);
}

}  // namespace

double Figure::ratio() const {
    if (at_most) return value > 0 ? target / value : 0;
    return target > 0 ? value / target : 0;
}

nlohmann::json to_json(const Figure& f) {
    return {{"figure", f.name},   {"value", f.value},     {"unit", f.unit},
            {"target", f.target}, {"at_most", f.at_most}, {"ratio", f.ratio()},
            {"met", f.met()},     {"note", f.note},       {"condition", f.condition_text}};
}

void print_floor(std::ostream& out, const FloorResult& f) {
    fmt::print(out, "floor (this machine, this run)\n");
    fmt::print(out, "  fdatasync (write {} B + sync):  {}\n", f.message_bytes + 8,
               latency_line(f.fdatasync));
    fmt::print(out, "    the same, cores idle:        {}  (the bound takes the lower p50, see "
               "floor.hpp)\n",
               latency_line(f.fdatasync_idle));
    fmt::print(out, "  zmq round trip ({} B event, two processes):  {}\n", f.message_bytes,
               latency_line(f.zmq_rtt));
    fmt::print(out, "    the same, two threads of one process:  {}  (not the bound: one I/O "
               "thread fewer each way, see floor.hpp)\n",
               latency_line(f.zmq_rtt_one_process));
    fmt::print(out,
               "  one durable append >= {}; decision (3 appends) >= {}; full chain "
               "(5 appends) >= {}\n",
               format_us(f.append_us()), format_us(f.decision_bound_us()),
               format_us(f.chain_bound_us()));
    fmt::print(out,
               "  skeleton (the same appends through as many processes, none of the system's "
               "work; skeleton.hpp):\n"
               "    decision (3 appends, 4 processes):  {}  = {:.2f}x the bound\n"
               "    full chain (5 appends, 6 processes):  {}  = {:.2f}x the bound\n",
               latency_line(f.skeleton_decision),
               f.skeleton_decision.p50_us / f.decision_bound_us(),
               latency_line(f.skeleton_chain), f.skeleton_chain.p50_us / f.chain_bound_us());
}

void print_processes(std::ostream& out, const std::vector<ProcUsage>& usage) {
    fmt::print(out, "  {:<20} {:>8} {:>10} {:>8} {:>12} {:>12}\n", "process", "pid", "cpu s",
               "cpu %", "rss", "peak rss");
    for (const auto& u : usage) {
        fmt::print(out, "  {:<20} {:>8} {:>10.2f} {:>7.0f}% {:>9.1f} MiB {:>8.1f} MiB\n", u.name,
                   u.pid, u.cpu_s, u.cpu_pct, u.rss_kib / 1024.0, u.peak_rss_kib / 1024.0);
    }
}

void print_broker_run(std::ostream& out, const BrokerRun& r) {
    if (r.window == 1) {
        fmt::print(out,
                   "broker alone, {} publisher{} (publish, wait for the durable ack, repeat)\n",
                   r.publishers, r.publishers == 1 ? "" : "s");
    } else {
        fmt::print(out,
                   "broker alone, {} publisher{}, each with up to {} publishes awaiting their "
                   "durable ack\n",
                   r.publishers, r.publishers == 1 ? "" : "s", r.window);
    }
    fmt::print(out, "  {:.0f} acked events/s ({} in {:.1f} s, {} not acked)\n", r.acked_per_s(),
               r.acked, r.wall_s, r.failed);
    fmt::print(out, "  round trip: {}\n", latency_line(r.round_trip));
    print_processes(out, r.usage);
}

void print_load(std::ostream& out, const LoadResult& r) {
    fmt::print(out, "{}: {} loop, {} connection{}{}, {:.1f} s, POST {}\n", r.options.label,
               r.options.rate > 0 ? "open" : "closed", r.options.concurrency,
               r.options.concurrency == 1 ? "" : "s",
               r.options.rate > 0 ? fmt::format(", {:.0f} orders/s due", r.options.rate) : "",
               r.wall_s, r.options.path);
    fmt::print(out, "  answered: {:.0f} orders/s ({} of {} sent)\n", r.answered_per_s(), r.answered,
               r.sent);
    fmt::print(out, "  outcomes: {}\n", counts(r.outcomes));
    fmt::print(out, "  errors:   {}\n", counts(r.errors));
    fmt::print(
        out, "  {}{}: {}\n",
        r.options.path == "/orders" ? "accept latency (202 once durable)" : "decision latency",
        r.options.rate > 0 ? " (from the time each order was due)" : "", latency_line(r.decision));
}

void print_system_run(std::ostream& out, const SystemRun& r,
                      const std::optional<FloorResult>& floor) {
    print_load(out, r.load);
    const auto& c = r.chain;
    fmt::print(out, "  terminal: {:.0f} orders/s ({} of {} orders in the log)\n", c.terminal_per_s,
               c.terminal, c.orders);
    fmt::print(out, "  full chain latency (OrderPlaced -> CustomerNotified): {}\n",
               latency_line(c.full_chain));
    if (!c.hops.empty() && c.hops.front().second.count > 0) {
        std::string hops;
        for (const auto& [name, p] : c.hops) {
            hops += fmt::format("{}{} {} / {}", hops.empty() ? "" : ", ", name,
                                format_us(p.p50_us), format_us(p.p99_us));
        }
        fmt::print(out, "    by hop (p50 / p99, successful orders): {}\n", hops);
    }
    if (floor && r.load.options.path == "/place-order") {
        fmt::print(out,
                   "  vs the floor: decision p50 = {:.2f}x its bound ({:.2f}x the skeleton's "
                   "3 appends), full chain p50 = {:.2f}x its bound\n",
                   r.load.decision.p50_us / floor->decision_bound_us(),
                   r.load.decision.p50_us / floor->skeleton_decision.p50_us,
                   c.full_chain.p50_us / floor->chain_bound_us());
    }
    fmt::print(out,
               "  checks: {} terminal, {} answers agree with the log, stock {} ({} "
               "-> {}); log read in {:.1f} s\n",
               c.terminal == c.orders ? "every order" : "NOT every order",
               c.disagreements == 0 && c.answered_not_found == 0 ? "all" : "NOT all",
               r.stock_conserved ? "conserved" : "NOT conserved",
               r.stock_before ? std::to_string(*r.stock_before) : "?",
               r.stock_after ? std::to_string(*r.stock_after) : "?", c.check_s);
    for (const auto& p : r.problems) fmt::print(out, "  PROBLEM: {}\n", p);
    print_processes(out, r.usage);
}

void print_figures(std::ostream& out, const std::vector<Figure>& figures) {
    fmt::print(out, "\n{:<58} {:>14} {:>16} {:>8}  {}\n", "figure", "value", "target", "ratio",
               "met");
    fmt::print(out, "{}\n", std::string(106, '-'));
    for (const auto& f : figures) {
        const std::string target = (f.at_most ? "<= " : ">= ") + format_value(f.target, f.unit);
        fmt::print(out, "{:<58} {:>14} {:>16} {:>7.2f}x  {}{}\n", f.name,
                   format_value(f.value, f.unit), target, f.ratio(), f.met() ? "yes" : "NO",
                   f.condition ? "" : " (" + f.condition_text + ")");
    }
    std::size_t met = 0;
    for (const auto& f : figures) met += f.met() ? 1 : 0;
    fmt::print(out, "{}\n{} of {} targets met. Ratio: how far past the target (>= 1.00 met).\n",
               std::string(106, '-'), met, figures.size());
}

}  // namespace op::bench
