// bench runs and says something sane: a few seconds of load against a system it starts
// itself, the floor, and the broker alone, each read back from its --json. No timing is
// asserted (this machine's speed is not a test result); structure, counts and checks are.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "support/harness.hpp"

namespace {

// Runs bench with `args` and parses what it prints on stdout (with --json the human report
// goes to stderr, kept in a file to show when something fails).
nlohmann::json run_bench(const std::string& args) {
    const op::test::TempDir dir("op-bench-smoke");
    const auto report = dir.path() / "stderr.txt";
    const std::string command =
        std::string(OP_BIN_DIR) + "/bench --json " + args + " 2>" + report.string();
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE_MESSAGE(pipe != nullptr, "cannot run " << command);
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
    const int status = ::pclose(pipe);
    INFO("command: " << command);
    INFO("stdout: " << out.substr(0, 2000));
    INFO("stderr: " << op::test::tail_file(report, 30));
    REQUIRE(status == 0);
    auto j = nlohmann::json::parse(out, nullptr, false);
    REQUIRE(j.is_object());
    return j;
}

void check_latency(const nlohmann::json& p, std::uint64_t count) {
    CHECK(p["count"].get<std::uint64_t>() == count);
    CHECK(p["p50_us"].get<double>() > 0);
    CHECK(p["p50_us"].get<double>() <= p["p99_us"].get<double>());
    CHECK(p["p99_us"].get<double>() <= p["max_us"].get<double>());
}

}  // namespace

TEST_CASE("bench drives a self-started system, measures the floor and checks its run") {
    const auto j = run_bench("--floor --floor-seconds 0.3 --duration 2 --concurrency 4");
    CHECK(j["machine"]["cores"].get<int>() > 0);
    check_latency(j["floor"]["fdatasync"], j["floor"]["fdatasync"]["count"]);
    CHECK(j["floor"]["decision_bound_us"].get<double>() > 0);
    // The bound is built on the lower fdatasync p50 of the busy-cores and idle-cores probes.
    const auto& floor = j["floor"];
    const double busy = floor["fdatasync"]["p50_us"].get<double>();
    const double idle = floor["fdatasync_idle_cores"]["p50_us"].get<double>();
    CHECK(floor["fdatasync_bound_us"].get<double>() == doctest::Approx(std::min(busy, idle)));
    CHECK(floor["append_bound_us"].get<double>() ==
          doctest::Approx(std::min(busy, idle) + floor["zmq_rtt"]["p50_us"].get<double>()));
    CHECK(floor["decision_bound_us"].get<double>() ==
          doctest::Approx(3 * floor["append_bound_us"].get<double>()));
    // Both round-trip probes ran: two processes (the bound's) and two threads of one process.
    check_latency(floor["zmq_rtt"], floor["zmq_rtt"]["count"]);
    check_latency(floor["zmq_rtt_one_process"], floor["zmq_rtt_one_process"]["count"]);
    // The skeleton (a relay and its hops, started by bench) carried messages all the way
    // round, through 3 appends and through 5.
    check_latency(floor["skeleton_decision"], floor["skeleton_decision"]["count"]);
    check_latency(floor["skeleton_chain"], floor["skeleton_chain"]["count"]);
    CHECK(floor["skeleton_decision"]["count"].get<std::uint64_t>() >= 10);
    CHECK(floor["skeleton_chain"]["count"].get<std::uint64_t>() >= 10);

    REQUIRE(j["runs"].size() == 1);
    const auto& run = j["runs"][0];
    const auto answered = run["answered"].get<std::uint64_t>();
    CHECK(answered > 0);
    CHECK(run["error_count"] == 0);
    CHECK(run["outcomes"]["success"].get<std::uint64_t>() == answered);
    check_latency(run["decision_latency"], answered);
    // Every order reached its end, the answers match the log, and stock adds up.
    CHECK(run["chain"]["orders"].get<std::uint64_t>() == answered);
    CHECK(run["chain"]["terminal"] == run["chain"]["orders"]);
    CHECK(run["chain"]["answers_checked"].get<std::uint64_t>() == answered);
    CHECK(run["chain"]["disagreements"] == 0);
    check_latency(run["chain"]["full_chain_latency"], answered);
    // The full chain hop by hop: four hops, each over every (successful) order, and their
    // medians no longer than the whole chain's slowest order.
    const auto& hops = run["chain"]["hops"];
    REQUIRE(hops.size() == 4);
    CHECK(hops[0]["hop"] == "OrderPlaced -> PaymentVerified");
    CHECK(hops[3]["hop"] == "Shipped -> CustomerNotified");
    for (const auto& h : hops) {
        INFO(h.dump());
        check_latency(h["latency"], answered);
        CHECK(h["latency"]["p50_us"].get<double>() <=
              run["chain"]["full_chain_latency"]["max_us"].get<double>());
    }
    CHECK(run["stock_conserved"] == true);
    CHECK(run["stock_before"].get<std::int64_t>() - run["stock_after"].get<std::int64_t>() ==
          static_cast<std::int64_t>(answered));
    CHECK(run["ok"] == true);
    // The six programs and bench itself, each with some CPU and memory.
    REQUIRE(run["processes"].size() == 7);
    for (const auto& p : run["processes"]) {
        INFO(p.dump());
        CHECK(p["rss_kib"].get<long>() > 0);
        CHECK(p["cpu_s"].get<double>() >= 0);
    }
}

TEST_CASE("bench measures the broker alone with several publishers") {
    const auto j = run_bench("--broker --publishers 1,4 --broker-seconds 1");
    REQUIRE(j["broker"].size() == 2);
    CHECK(j["broker"][0]["publishers"] == 1);
    CHECK(j["broker"][1]["publishers"] == 4);
    for (const auto& r : j["broker"]) {
        CHECK(r["acked"].get<std::uint64_t>() > 0);
        CHECK(r["failed"] == 0);
        check_latency(r["round_trip"], r["acked"]);
    }
}

TEST_CASE("bench runs open loop at a fixed rate") {
    const auto j = run_bench("--rate 100 --concurrency 4 --duration 2");
    REQUIRE(j["runs"].size() == 1);
    const auto& run = j["runs"][0];
    CHECK(run["mode"] == "open");
    // 100 orders/s for 2 s: 200 orders are due, and each is sent.
    CHECK(run["sent"].get<std::uint64_t>() == 200);
    CHECK(run["ok"] == true);
}
