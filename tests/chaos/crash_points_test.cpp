// Crash at every point, the way SQLite and etcd test themselves: for each failpoint on a write
// path (broker/include/op/runtime/failpoint.hpp) and the process that hits it, run a fresh
// system with OP_FAILPOINTS="<point>=crash@N" for N = 1, 2, 3, ... under a small fixed
// workload, restart the process once the failpoint has SIGKILLed it, and check that the broker's
// log, the read model and the services' databases still agree that every accepted order was
// handled exactly once. N grows until a run ends without the crash (N exceeded the hits).
//
// By default every point is covered in every process that hits it (the broker's five points;
// service.after_publish and service.after_commit in payment, inventory, fulfilment and
// notification). OP_CRASH_POINTS_CAP changes the bound on N (default 40);
// OP_CRASH_POINTS_TRACE=1 prints the timing of every run; OP_KEEP_TEST_DIRS=1 keeps the data
// dirs. Processes are spawned from the test's thread only (the harness uses PR_SET_PDEATHSIG);
// HTTP requests run on a helper thread so that thread can restart a crashed broker meanwhile.
#include <doctest/doctest.h>

#include <csignal>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "inspect.hpp"
#include "order_api.hpp"

using nlohmann::json;
using op::test::env_or;
using op::test::poll_until;
using op::test::query_int;
using op::test::try_query_int;
using op::test::System;
using op::test::SystemOptions;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kReactingServices = {"payment", "inventory", "fulfilment",
                                                    "notification"};

struct Point {
    std::string name;
    std::string process;
};

struct Order {
    std::string key;
    std::string item;
    int quantity = 1;
    std::string amount;  // JSON number text, currency units
    std::string expect;  // "reserved", "insufficient", "out_of_stock" or "" (any)
    std::string order_id;
};

struct RunResult {
    bool crashed = false;
    int failures = 0;  // failed checks in this run
    std::size_t orders = 0;
    double seconds = 0;
};

// A CHECK that also counts the failure into `result.failures`, so a failing run stops the
// walk over N (one precise report instead of forty).
#define CP_CHECK(cond, ...)                                       \
    do {                                                          \
        const bool cp_ok_ = static_cast<bool>(cond);              \
        if (!cp_ok_) ++result.failures;                           \
        CHECK_MESSAGE(cp_ok_, #cond " -- ", __VA_ARGS__);         \
    } while (0)

std::string tails(System& system, const std::vector<std::string>& names,
                  std::size_t lines = 30) {
    std::string out;
    for (const auto& name : names) {
        out += "--- last " + std::to_string(lines) + " lines of " + name + ".log ---\n" +
               system.log_tail(name, lines);
    }
    return out;
}

RunResult run_once(const Point& point, std::uint64_t n) {
    RunResult result;
    const auto started = Clock::now();
    const std::string spec = point.name + "=crash@" + std::to_string(n);
    INFO("run: OP_FAILPOINTS=\"", spec, "\" for ", point.process);

    const std::map<std::string, std::int64_t> initial = {{"phone", 3}};
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 3})";
    options.decision_timeout_ms = 2000;
    // The smallest segments: the log rolls every two or three events, so every run crosses
    // segment boundaries and log.segment_roll is hit several times.
    options.extra_args["broker"] = {"--segment-size", "1KiB"};
    System system(options);
    system.set_env(point.process, {{"OP_FAILPOINTS", spec}});

    // The one crash this run may see: the armed process SIGKILLed by the failpoint. It is
    // restarted at once without failpoints. Any other exit is a failure.
    std::uintmax_t armed_offset = 0;
    auto handle_exits = [&] {
        for (const auto& name : System::names()) {
            if (!system.started(name) || system.running(name)) continue;
            const int status = system.process(name).exit_status().value_or(-1);
            const bool failpoint_crash =
                name == point.process && !result.crashed && status == 128 + SIGKILL &&
                op::test::file_contains(system.log_path(name),
                                        "failpoint " + point.name + ": crashing", armed_offset);
            REQUIRE_MESSAGE(failpoint_crash, name, " ", op::test::describe_status(status),
                            " but only ", point.process, " may die, once, by the failpoint ",
                            point.name, "\n", tails(system, {name}, 40));
            result.crashed = true;
            system.set_env(name, {});
            system.start(name);
        }
    };

    try {
        system.start_all();
    } catch (const std::exception& e) {
        // The failpoint may fire during startup; anything else is a failure.
        INFO("start_all failed: ", e.what());
        handle_exits();
        if (!result.crashed) throw;
        for (const auto& name : System::names()) {
            if (!system.started(name)) system.start(name);
        }
    }
    armed_offset = system.process(point.process).log_offset();
    const double t_started = std::chrono::duration<double>(Clock::now() - started).count();

    // ---- workload: orders over POST /orders, each with an Idempotency-Key, retried (same key)
    // on no answer or 5xx, since the armed process may be the broker.
    std::vector<Order> orders;
    auto place = [&](Order& o) {
        // A long customer makes every event ~500 bytes, so the 1 KiB segments roll often
        // in a run.
        const std::string body = R"({"item":")" + o.item + R"(","quantity":)" +
                                 std::to_string(o.quantity) + R"(,"amount":)" + o.amount +
                                 R"(,"customer":")" + std::string(200, 'c') + "\"}";
        const auto deadline = Clock::now() + 60s;
        for (int attempt = 1;; ++attempt) {
            handle_exits();
            // The request runs on a helper thread while this one watches for the crash and
            // restarts the process at once (children must be spawned from this thread), so an
            // OrderPlaced in flight when the broker dies is re-sent to the new one and acked.
            auto request = std::async(std::launch::async, [&] {
                auto client = system.http();
                client.set_connection_timeout(0, 300'000);
                return client.Post("/orders", {{"Idempotency-Key", o.key}}, body,
                                   "application/json");
            });
            while (request.wait_for(5ms) != std::future_status::ready) handle_exits();
            auto res = request.get();
            if (res && (res->status == 200 || res->status == 202)) {
                auto j = json::parse(res->body, nullptr, false);
                o.order_id = j.is_object() ? j.value("order_id", "") : "";
                REQUIRE_MESSAGE(!o.order_id.empty(), "no order_id in ", res->body);
                return;
            }
            REQUIRE_MESSAGE((!res || res->status >= 500), "POST /orders ", body, " answered ",
                            res->status, ": ", res->body);
            REQUIRE_MESSAGE(Clock::now() < deadline, "order ", o.key, " not accepted after ",
                            attempt, " attempts; last: ",
                            res ? std::to_string(res->status) + " " + res->body
                                : httplib::to_string(res.error()),
                            "\n", tails(system, {"order", "broker", point.process}));
            std::this_thread::sleep_for(20ms);  // back off before the retry, not a wait
        }
    };

    const std::string run_tag = point.name + "-" + point.process + "-" + std::to_string(n);
    // The fixed part: two phone orders take all 3 phones, one is above the 5000 payment limit
    // (Insufficient funds), and one finds the phones gone (OutOfStock, so a refund).
    const std::vector<Order> fixed = {
        {run_tag + "-a", "phone", 1, "10.00", "reserved", ""},
        {run_tag + "-b", "phone", 2, "20.00", "reserved", ""},
        {run_tag + "-c", "phone", 1, "6000", "insufficient", ""},
        {run_tag + "-d", "phone", 1, "30.00", "out_of_stock", ""},
    };
    // ---- quiet: every order terminal, and every service has applied the broker's whole log (its
    // checkpoint is the head), so no failpoint can be hit any more. A crash meanwhile (the
    // failpoint fired on a late hit) is handled and the wait goes on.
    std::set<std::string> unfinished;  // orders placed and not yet seen terminal
    std::uint64_t head = 0;
    std::string waiting_on;
    const auto checkpoint_sql = "SELECT seq FROM checkpoint WHERE id = 1";
    auto quiet = [&] {
        handle_exits();
        for (auto it = unfinished.begin(); it != unfinished.end();) {
            it = op::test::order_terminal(system, *it) ? unfinished.erase(it) : std::next(it);
        }
        if (!unfinished.empty()) {
            waiting_on = std::to_string(unfinished.size()) + " orders not terminal";
            return false;
        }
        const auto health = op::test::get_json(system, "/healthz");
        if (health.status != 200 || !health.body.is_object()) {
            waiting_on = "order service health";
            return false;
        }
        head = health.body.value("broker_head", std::uint64_t{0});
        if (head == 0 || health.body.value("applied_seq", std::uint64_t{0}) != head) {
            waiting_on = "order read model at head " + std::to_string(head);
            return false;
        }
        for (const auto& s : kReactingServices) {
            const auto cp = try_query_int(system.data_dir() / (s + ".db"), checkpoint_sql);
            if (!cp || static_cast<std::uint64_t>(*cp) != head) {
                waiting_on = s + " checkpoint " + (cp ? std::to_string(*cp) : "none") +
                             " != head " + std::to_string(head);
                return false;
            }
        }
        return true;
    };

    auto await_quiet = [&] {
        if (poll_until(30s, quiet, 20ms)) return;
        std::string report;
        for (const auto& id : unfinished) {
            report += id + ": " + op::test::get_json(system, "/orders/" + id).body.dump() + "\n";
            if (report.size() > 4000) break;
        }
        FAIL("no quiet within 30 s (waiting on: ", waiting_on, ")\n", report,
             tails(system, {point.process, "broker", "order"}));
    };

    // For a service's failpoints, one order at a time, each once the last is through every
    // service and committed: a service commits when its feed has been quiet for 10 ms
    // (RunnerConfig::commit_when_quiet), so four orders placed at once would be one commit and
    // one crash run instead of one per order. The broker's failpoints are hit per append and
    // group commit, which four orders at once already spread over a dozen hits; one at a time
    // would give a few more for twice the time.
    const bool one_at_a_time = point.process != "broker";
    for (const auto& o : fixed) {
        orders.push_back(o);
        place(orders.back());
        unfinished.insert(orders.back().order_id);
        if (one_at_a_time) await_quiet();
    }
    result.orders = orders.size();
    const double t_placed = std::chrono::duration<double>(Clock::now() - started).count();

    std::vector<json> events;
    for (int attempt = 0;; ++attempt) {
        await_quiet();
        // The whole log, as the broker holds it.
        events = op::test::export_log(system);
        // Still quiet with the same head (nothing crashed or appended meanwhile): done.
        const std::uint64_t before = head;
        const bool still = quiet() && head == before &&
                           !events.empty() && events.back()["seq"].get<std::uint64_t>() == head;
        if (still) break;
        REQUIRE_MESSAGE(attempt < 5, "the system never stayed quiet (waiting on: ", waiting_on,
                        ")");
    }
    const double t_quiet = std::chrono::duration<double>(Clock::now() - started).count();
    if (env_or("OP_CRASH_POINTS_TRACE", 0) != 0) {
        MESSAGE(spec, " in ", point.process, ": crashed ", result.crashed, ", started at ",
                t_started, " s, orders placed at ", t_placed, " s, quiet at ", t_quiet, " s");
    }
    for (const auto& name : System::names()) {
        CP_CHECK(system.running(name), name, " is not running\n", tails(system, {name}));
    }

    // ---- invariants, from the log
    std::map<std::string, std::map<std::string, int>> per_order;  // order -> type -> count
    std::map<std::string, std::int64_t> reserved_in_log;
    std::uint64_t previous_seq = 0;
    std::int64_t refunds_in_log = 0;
    for (const auto& e : events) {
        const auto seq = e["seq"].get<std::uint64_t>();
        CP_CHECK(seq == previous_seq + 1, "the log has a hole or disorder: seq ", seq, " after ",
                 previous_seq);
        previous_seq = seq;
        per_order[e["order_id"]][e["type"]]++;
        if (e["type"] == "StockReserved") {
            reserved_in_log[e["data"]["item"]] += e["data"]["quantity"].get<std::int64_t>();
        }
        if (e["type"] == "PaymentRefunded") ++refunds_in_log;
    }
    std::set<std::string> accepted;
    for (const auto& o : orders) accepted.insert(o.order_id);
    for (const auto& [id, counts] : per_order) {
        CP_CHECK(accepted.count(id) == 1, "the log has events of an order never accepted: ", id);
    }
    for (const auto& o : orders) {
        auto& counts = per_order[o.order_id];
        CP_CHECK(counts["OrderPlaced"] == 1, "order ", o.key, " (", o.order_id, ") has ",
                 counts["OrderPlaced"], " OrderPlaced");
        for (const auto& [type, count] : counts) {
            CP_CHECK(count <= 1, "order ", o.key, " has ", count, " ", type);
        }
        const int outcomes =
            counts["StockReserved"] + counts["OutOfStock"] + counts["PaymentFailed"];
        CP_CHECK(outcomes == 1, "order ", o.key, " has ", outcomes, " outcomes");
        if (counts["OutOfStock"] >= 1 && counts["PaymentVerified"] >= 1) {
            CP_CHECK(counts["PaymentRefunded"] == 1, "order ", o.key,
                     " was paid and out of stock, refunds: ", counts["PaymentRefunded"]);
        } else {
            CP_CHECK(counts["PaymentRefunded"] == 0, "order ", o.key,
                     " was refunded without being paid and out of stock");
        }
        CP_CHECK(counts["CustomerNotified"] == 1, "order ", o.key, " has ",
                 counts["CustomerNotified"], " CustomerNotified");
        if (o.expect == "reserved") {
            CP_CHECK(counts["StockReserved"] == 1, "order ", o.key, " should have succeeded");
        } else if (o.expect == "insufficient") {
            CP_CHECK(counts["PaymentFailed"] == 1, "order ", o.key,
                     " should have failed payment (above the limit)");
        } else if (o.expect == "out_of_stock") {
            CP_CHECK(counts["OutOfStock"] == 1, "order ", o.key, " should have found no stock");
        }
    }

    // ---- invariants, in the services' own databases
    const auto inventory = system.data_dir() / "inventory.db";
    const auto payment = system.data_dir() / "payment.db";
    for (const auto& [item, start] : initial) {
        const auto available =
            query_int(inventory, "SELECT available FROM stock WHERE item = '" + item + "'");
        const auto reserved =
            query_int(inventory, "SELECT reserved FROM stock WHERE item = '" + item + "'");
        CP_CHECK(available >= 0, item, " available ", available);
        CP_CHECK(available + reserved == start, item, ": available ", available, " + reserved ",
                 reserved, " != initial ", start);
        CP_CHECK(reserved == reserved_in_log[item], item, ": reserved ", reserved,
                 " in inventory.db, ", reserved_in_log[item], " in the log's StockReserved");
    }
    const auto refunded =
        query_int(payment, "SELECT COUNT(*) FROM payments WHERE status = 'refunded'");
    const auto refused =
        query_int(inventory, "SELECT COUNT(*) FROM reservations WHERE outcome = 'refused'");
    CP_CHECK(refunded == refused, "payment.db has ", refunded, " refunded, inventory.db ",
             refused, " refused reservations");
    CP_CHECK(refunded == refunds_in_log, "payment.db has ", refunded, " refunded, the log ",
             refunds_in_log, " PaymentRefunded");

    if (result.failures > 0) {
        MESSAGE("failed run ", spec, " in ", point.process, " (crashed: ", result.crashed,
                ", data dir ", system.data_dir().string(), ")\n",
                tails(system, {point.process, "broker", "order"}, 40));
    }
    result.seconds =
        std::chrono::duration<double>(Clock::now() - started).count();
    return result;
}

void crash_at_every_hit(const Point& point) {
    const std::uint64_t cap = env_or("OP_CRASH_POINTS_CAP", 40);
    const auto started = Clock::now();
    std::uint64_t crash_runs = 0;
    bool exhausted = false;
    std::size_t orders = 0;
    for (std::uint64_t n = 1; n <= cap; ++n) {
        const RunResult run = run_once(point, n);
        orders = run.orders;
        REQUIRE_MESSAGE(run.failures == 0, "invariants broken after ", point.name, "=crash@", n,
                        " in ", point.process, " (see above); stopping this point");
        if (!run.crashed) {
            exhausted = true;
            break;
        }
        ++crash_runs;
    }
    REQUIRE_MESSAGE(crash_runs > 0, "failpoint ", point.name, " was never hit in ",
                    point.process, ": crash@1 did not crash it");
    REQUIRE_MESSAGE(exhausted, "failpoint ", point.name, " in ", point.process,
                    " still crashed at N=", cap, " (the cap, OP_CRASH_POINTS_CAP)");
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    MESSAGE("crash point ", point.name, " in ", point.process, ": ", crash_runs,
            " crash runs (N=1..", crash_runs, "; N=", crash_runs + 1, " not reached), ", orders,
            " orders a run, ", seconds, " s");
}

}  // namespace

TEST_CASE("crash points: broker log.before_write") {
    crash_at_every_hit({"log.before_write", "broker"});
}
TEST_CASE("crash points: broker log.mid_group") {
    crash_at_every_hit({"log.mid_group", "broker"});
}
TEST_CASE("crash points: broker log.after_write") {
    crash_at_every_hit({"log.after_write", "broker"});
}
TEST_CASE("crash points: broker log.segment_roll") {
    crash_at_every_hit({"log.segment_roll", "broker"});
}
TEST_CASE("crash points: broker broker.after_fsync") {
    crash_at_every_hit({"broker.after_fsync", "broker"});
}
TEST_CASE("crash points: payment service.after_publish") {
    crash_at_every_hit({"service.after_publish", "payment"});
}
TEST_CASE("crash points: payment service.after_commit") {
    crash_at_every_hit({"service.after_commit", "payment"});
}
TEST_CASE("crash points: inventory service.after_publish") {
    crash_at_every_hit({"service.after_publish", "inventory"});
}
TEST_CASE("crash points: inventory service.after_commit") {
    crash_at_every_hit({"service.after_commit", "inventory"});
}
TEST_CASE("crash points: fulfilment service.after_publish") {
    crash_at_every_hit({"service.after_publish", "fulfilment"});
}
TEST_CASE("crash points: fulfilment service.after_commit") {
    crash_at_every_hit({"service.after_commit", "fulfilment"});
}
TEST_CASE("crash points: notification service.after_publish") {
    crash_at_every_hit({"service.after_publish", "notification"});
}
TEST_CASE("crash points: notification service.after_commit") {
    crash_at_every_hit({"service.after_commit", "notification"});
}
