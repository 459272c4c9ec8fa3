// bench: the load generator and benchmark suite. See --help, and README's "Measuring it".
#include <fmt/format.h>
#include <fmt/ostream.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "broker_bench.hpp"
#include "compare.hpp"
#include "config.hpp"
#include "floor.hpp"
#include "growth.hpp"
#include "machine.hpp"
#include "op/runtime/process.hpp"
#include "report.hpp"
#include "skeleton.hpp"
#include "stop.hpp"
#include "suite.hpp"
#include "support/harness.hpp"
#include "system_run.hpp"
#include "target.hpp"

namespace {

using namespace op::bench;
using std::chrono::milliseconds;

milliseconds ms(double seconds) { return milliseconds(static_cast<std::int64_t>(seconds * 1000)); }

LoadOptions load_from(const BenchConfig& c, std::string label, int connections) {
    LoadOptions o;
    o.label = std::move(label);
    o.concurrency = connections;
    o.rate = c.rate;
    o.duration = ms(c.duration_s);
    o.path = c.path;
    o.item = c.item;
    o.body = fmt::format(R"({{"item":"{}","amount":{}}})", c.item, c.amount);
    return o;
}

// The modes other than the suite, in the order given on the command line's help.
nlohmann::json run_modes(const BenchConfig& c, std::ostream& out) {
    nlohmann::json j;
    const bool load_run = !(c.broker || c.compare_original || !c.growth.empty()) || c.floor;
    if (!c.growth.empty()) {
        const auto runs = run_growth(c.growth, out);
        print_growth(out, runs);
        j["growth"] = to_json(runs);
    }
    std::optional<FloorResult> floor;
    if (c.floor) {
        op::test::TempDir dir("op-bench-floor");
        floor = measure_floor(c.floor_dir.empty() ? dir.path() : std::filesystem::path(c.floor_dir),
                              ms(c.floor_probe_s));
        print_floor(out, *floor);
        j["floor"] = to_json(*floor);
    }
    if (c.broker) {
        j["broker"] = nlohmann::json::array();
        for (int r = 0; r < std::max(1, c.runs); ++r) {
            for (const auto& run :
                 run_broker_bench(c.publishers, c.window, ms(c.broker_duration_s))) {
                out << "\n";
                print_broker_run(out, run);
                j["broker"].push_back(to_json(run));
            }
        }
    }
    if (!load_run && !c.compare_original) return j;

    int most = c.concurrency;
    if (c.compare_original) {
        for (int n : c.compare_connections) most = std::max(most, n);
    }
    TargetOptions t;
    t.url = c.url;
    t.endpoints = c.endpoints;
    // The order service's own bound (1,024) is above what bench usually drives.
    t.max_sync_waits = c.max_sync_waits > 0 ? c.max_sync_waits : (most + 8 > 1024 ? most + 8 : 0);
    Target target(t);
    fmt::print(out, "\n{}\n", target.describe());
    if (load_run) {
        j["runs"] = nlohmann::json::array();
        const auto label = c.rate > 0 ? fmt::format("{:.0f} orders/s", c.rate)
                                      : fmt::format("{} connection(s)", c.concurrency);
        for (int r = 0; r < std::max(1, c.runs); ++r) {
            auto run =
                run_against(target, load_from(c, label, c.concurrency), ms(c.check_timeout_s));
            out << "\n";
            print_system_run(out, run, floor);
            j["runs"].push_back(to_json(run));
        }
    }
    if (c.compare_original) {
        std::vector<std::vector<CompareRun>> compare;
        j["compare"] = nlohmann::json::array();
        for (int n : c.compare_connections) {
            std::vector<CompareRun> list;
            for (int r = 0; r < std::max(1, c.runs); ++r) {
                auto o = load_from(c, "", n);
                o.rate = 0;
                o.duration = ms(c.compare_duration_s);
                list.push_back(compare_once(target,
                                            c.original_dir.empty()
                                                ? default_seed_dir()
                                                : std::filesystem::path(c.original_dir),
                                            o));
                j["compare"].push_back(to_json(list.back()));
            }
            compare.push_back(std::move(list));
        }
        print_comparison(out, compare);
    }
    return j;
}

}  // namespace

int main(int argc, char** argv) {
    BenchConfig c;
    CLI::App app{
        "bench: drives orders over real HTTP keep-alive connections into the order pipeline and "
        "reports orders/s answered and reaching a terminal state, decision and full-chain "
        "latency percentiles, errors by kind, and each process's CPU time and RSS; then checks "
        "the run against the broker's log (every order terminal, answers agree, stock "
        "conserved). Without --url it starts its own system (test harness: free ports, a "
        "temporary data dir, stock no run exhausts). A progress bar goes to stderr on a "
        "terminal."};
    app.add_option("--url", c.url,
                   "an already running system's order service, e.g. http://127.0.0.1:5000 (make "
                   "run); give --live/--replay too if its broker is not on the default ports")
        ->capture_default_str();
    app.add_option("--live", c.endpoints.live, "with --url: the broker's live endpoint")
        ->capture_default_str();
    app.add_option("--replay", c.endpoints.replay, "with --url: the broker's replay endpoint")
        ->capture_default_str();
    app.add_option("-d,--duration", c.duration_s, "seconds of load per run")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 3600.0));
    app.add_option(
           "-c,--concurrency", c.concurrency,
           "keep-alive connections (all on one thread of bench's); closed loop: each sends its "
           "next order when "
           "the last is answered; with --rate: the most orders in flight")
        ->capture_default_str()
        ->check(CLI::Range(1, 4096));
    app.add_option("-r,--rate", c.rate,
                   "open loop: orders/s due at a fixed pace whatever the answers do; latency is "
                   "measured from when each order was due (no coordinated omission). Give "
                   "--concurrency enough connections to keep up")
        ->check(CLI::Range(0.0, 1e7));
    app.add_option("--path", c.path,
                   "/place-order (waits for the decision) or /orders (answers once the order "
                   "is durable)")
        ->capture_default_str()
        ->check(CLI::IsMember({"/place-order", "/orders"}));
    app.add_option("--item", c.item, "item every order is for")->capture_default_str();
    app.add_option("--amount", c.amount, "amount of every order (> 5000 fails payment)")
        ->capture_default_str();
    app.add_option("--runs", c.runs, "repeat each run this many times (the suite: medians)")
        ->capture_default_str()
        ->check(CLI::Range(1, 100));
    app.add_option("--check-timeout", c.check_timeout_s,
                   "seconds to wait after a run for its last orders to reach a terminal state")
        ->capture_default_str();
    app.add_flag("--floor", c.floor,
                 "measure the floor first (fdatasync on the data dir, ZeroMQ loopback round "
                 "trip between two processes, and the bound they set: 3 durable appends to a "
                 "decision, 5 to the end of the chain; beside it, the skeleton of an order's "
                 "path: the same appends through as many processes with none of the system's "
                 "work), then a load run reported as a multiple of both");
    app.add_option("--floor-dir", c.floor_dir,
                   "directory to probe fdatasync in (default: a temporary dir under /tmp, where "
                   "a self-started system keeps its log; use make run's ./var for --url)");
    app.add_option("--floor-seconds", c.floor_probe_s, "seconds per floor probe")
        ->capture_default_str();
    app.add_flag("--broker", c.broker,
                 "the broker alone: publish-with-ack straight on the bus (fsync on, no HTTP, no "
                 "services) with each of --publishers publishers, a fresh broker each");
    app.add_option("--publishers", c.publishers, "publisher counts for --broker")
        ->capture_default_str()
        ->delimiter(',');
    app.add_option("--broker-seconds", c.broker_duration_s, "seconds per --broker run")
        ->capture_default_str();
    app.add_option("--window", c.window,
                   "--broker: publishes each publisher keeps awaiting their ack (pipelined); 1 "
                   "waits for each ack before the next publish, which is what one durable "
                   "publish round trip costs. The suite measures 1 publisher with 1, the most "
                   "publishers with each of --suite-windows, and the others with this")
        ->capture_default_str()
        ->check(CLI::Range(1, 4096));
    app.add_option("--suite-windows", c.suite_windows,
                   "the suite's broker-alone throughput with the most publishers: the windows "
                   "to run it at; the figure is the best of their medians, with the round trip "
                   "it costs. A throughput is read at saturation: with too few publishes in "
                   "flight the acks per second are set by each one's round trip, not by the "
                   "broker")
        ->capture_default_str()
        ->delimiter(',')
        ->check(CLI::Range(1, 4096));
    app.add_option("--growth", c.growth,
                   "the broker's start time and memory against its log's size: for each size "
                   "(events, e.g. --growth 100000,1000000,5000000) write a log of that many "
                   "events into a fresh data dir, then start the broker on it twice (the first "
                   "start indexes a log it has never seen; the second is every later start)")
        ->delimiter(',')
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}));
    app.add_flag("--compare-original", c.compare_original,
                 "start the original Flask system (../shared/seed_flask; needs python3-flask "
                 "and python3-requests: scripts/install-deps.sh --bench) and drive it, then "
                 "ours, with the same load at each of --connections; one table with both");
    app.add_option("--connections", c.compare_connections,
                   "connection counts for --compare-original")
        ->capture_default_str()
        ->delimiter(',');
    app.add_option("--compare-seconds", c.compare_duration_s,
                   "seconds per system per --compare-original run")
        ->capture_default_str();
    app.add_option("--original-dir", c.original_dir,
                   "the original system's directory (holding start.sh)");
    app.add_flag("--suite", c.suite,
                 "the standard suite (make bench): floor, broker alone at 1/8/64 publishers, "
                 "ours at 1 and 64 clients, a sustained run (--sustained-connections), the "
                 "original side by side at "
                 "1/8/32 connections, --runs each (3 for the issue's medians); ends with one "
                 "table of every figure, its target and the ratio");
    app.add_option("--sustained-connections", c.sustained_connections,
                   "the suite's sustained run (POST /orders, full chain): keep-alive "
                   "connections; enough to keep the cores busy, so it measures what the system "
                   "sustains rather than what that many clients, each waiting for its answer, "
                   "can send")
        ->capture_default_str()
        ->check(CLI::Range(1, 4096));
    app.add_option("--max-sync-waits", c.max_sync_waits,
                   "self-started system: the order service's --max-sync-waits (default: above "
                   "the connections bench opens, so its 503 guard is not what is measured)");
    app.add_flag("--json", c.json,
                 "print every figure as one JSON object on stdout (the human report goes to "
                 "stderr)");
    std::string zmq_echo;
    app.add_option("--zmq-echo", zmq_echo,
                   "not for use by hand: what --floor starts in a second process for its ZeroMQ "
                   "round-trip probe; binds a ROUTER at this endpoint and echoes every message "
                   "until SIGTERM");
    std::vector<std::string> skeleton_relay, skeleton_hop;
    app.add_option("--skeleton-relay", skeleton_relay,
                   "not for use by hand: ENDPOINT APPENDS FILE; what --floor starts as the "
                   "broker of its skeleton (skeleton.hpp): binds a ROUTER at ENDPOINT, appends "
                   "and fdatasyncs each message to FILE, then sends it on to the next hop")
        ->expected(3);
    app.add_option("--skeleton-hop", skeleton_hop,
                   "not for use by hand: ENDPOINT NAME; what --floor starts as a service of its "
                   "skeleton: connects to the relay at ENDPOINT as NAME and sends back every "
                   "message delivered to it")
        ->expected(2);
    op::runtime::SecurityFlags security;
    op::runtime::add_security_flags(app, security, "operator",
                                    "var/keys; with --url, to read the broker's log");
    CLI11_PARSE(app, argc, argv);
    if (!zmq_echo.empty()) {
        watch_stop_signals();
        try {
            return run_zmq_echo(zmq_echo);
        } catch (const std::exception& e) {
            std::cerr << "bench --zmq-echo: " << e.what() << "\n";
            return 1;
        }
    }
    if (!skeleton_relay.empty() || !skeleton_hop.empty()) {
        watch_stop_signals();
        try {
            if (!skeleton_hop.empty()) return run_skeleton_hop(skeleton_hop[0], skeleton_hop[1]);
            return run_skeleton_relay(skeleton_relay[0], std::stoi(skeleton_relay[1]),
                                      skeleton_relay[2]);
        } catch (const std::exception& e) {
            std::cerr << "bench --skeleton-*: " << e.what() << "\n";
            return 1;
        }
    }

    // A descriptor per connection, and some for the system bench starts and its probes.
    int most_connections = c.concurrency;
    if (c.suite) most_connections = std::max(most_connections, c.sustained_connections);
    for (int n : c.compare_connections) most_connections = std::max(most_connections, n);
    const auto wanted_files = static_cast<std::size_t>(most_connections) + 256;
    if (const auto allowed = op::runtime::raise_open_file_limit(wanted_files);
        allowed < wanted_files) {
        std::cerr << fmt::format(
            "bench: {} connections need about {} open files, and only {} are allowed here "
            "(ulimit -n); raise the limit (ulimit -n {}) or use fewer connections\n",
            most_connections, wanted_files, allowed, wanted_files);
        return 2;
    }

    // Also ignores SIGPIPE: a broken connection is an error to count, not the end of bench.
    watch_stop_signals();
    std::ostream& out = c.json ? std::cerr : std::cout;
    try {
        if (!c.url.empty()) c.endpoints.curve = op::runtime::load_client_keys(security, "var/keys");
        const auto machine = describe_machine();
        fmt::print(out, "{}\n", to_string(machine));
        nlohmann::json j = c.suite ? run_suite(c, out) : run_modes(c, out);
        j["machine"] = to_json(machine);
        if (c.json) std::cout << j.dump(2) << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "bench: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
