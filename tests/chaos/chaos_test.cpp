// Chaos: real processes, concurrent clients, and SIGKILL + restart of random processes (every
// service and the broker) at random moments, from a printed seed. Afterwards the read model,
// the broker's log and each service's database must agree that no accepted order was lost or
// handled twice. Bounded in orders and time; OP_CHAOS_ORDERS, OP_CHAOS_SECONDS and
// OP_CHAOS_SEED change the bounds and replay a failing run.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "inspect.hpp"
#include "order_api.hpp"

using nlohmann::json;
using op::test::env_or;
using op::test::poll_until;
using op::test::query_int;
using op::test::System;
using op::test::SystemOptions;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Accepted {
    std::string order_id;
    std::string item;
    int quantity = 1;
    std::string answer;  // "success", "failed", "pending" (202) or "placed" (async 202)
};

}  // namespace

TEST_CASE("chaos: kill -9 any process under load, nothing lost or handled twice") {
    const std::uint64_t seed = env_or("OP_CHAOS_SEED", std::random_device{}());
    const std::uint64_t target_orders = env_or("OP_CHAOS_ORDERS", 300);
    const auto time_limit = std::chrono::seconds(env_or("OP_CHAOS_SECONDS", 10));
    MESSAGE("chaos seed ", seed, " (replay with OP_CHAOS_SEED=", seed, "), ", target_orders,
            " orders over ", time_limit.count(), " s of load");

    SystemOptions options;
    const std::map<std::string, std::int64_t> initial = {{"phone", 150}, {"laptop", 40}};
    options.initial_stock_json = R"({"phone": 150, "laptop": 40})";
    options.decision_timeout_ms = 1000;
    System system(options);
    system.start_all();
    const auto started = Clock::now();

    // Clients: each order has an Idempotency-Key and is retried with it until some 2xx comes
    // back, as a careful client does when an answer is lost.
    std::mutex mu;
    std::vector<Accepted> accepted;
    std::atomic<std::uint64_t> issued{0};
    std::atomic<std::uint64_t> errors{0};
    auto client_loop = [&](int client_index) {
        std::mt19937_64 rng(seed * 31 + client_index);
        for (;;) {
            const auto n = issued.fetch_add(1);
            if (n >= target_orders) break;
            // Spread the orders over the whole load period, so kills land among them.
            std::this_thread::sleep_until(started + time_limit * n / target_orders);
            const std::string key = "chaos-" + std::to_string(seed) + "-" + std::to_string(n);
            const std::string item = rng() % 4 == 0 ? "laptop" : "phone";
            const int quantity = 1 + static_cast<int>(rng() % 2);
            const int amount = 10 + static_cast<int>(rng() % 6000);  // some above the limit
            const bool sync = rng() % 2 == 0;
            const std::string body = json{{"item", item}, {"amount", amount},
                                          {"quantity", quantity}}.dump();
            while (Clock::now() - started < time_limit + 30s) {
                auto client = system.http();
                client.set_connection_timeout(0, 300'000);
                httplib::Headers headers = {{"Idempotency-Key", key}};
                auto res = client.Post(sync ? "/place-order" : "/orders", headers, body,
                                       "application/json");
                if (res && (res->status == 200 || res->status == 202)) {
                    auto j = json::parse(res->body, nullptr, false);
                    std::lock_guard lock(mu);
                    accepted.push_back({j.value("order_id", ""), item, quantity,
                                        j.value("status", "")});
                    break;
                }
                ++errors;
                std::this_thread::sleep_for(20ms);  // back off before the retry, not a wait
            }
        }
    };

    std::atomic<int> clients_running{6};
    std::vector<std::thread> clients;
    for (int c = 0; c < 6; ++c) {
        clients.emplace_back([&, c] {
            client_loop(c);
            --clients_running;
        });
    }

    // The killer runs on this thread: the harness spawns children with PR_SET_PDEATHSIG, so a
    // process started from a helper thread would die with that thread. SIGKILL a random
    // process at a random moment, restart it shortly after, until the clients are done.
    std::uint64_t kills = 0;
    std::uint64_t restarts = 0;
    {
        std::mt19937_64 rng(seed);
        const auto& names = System::names();
        auto pause = [&](std::chrono::milliseconds d) {
            const auto until = Clock::now() + d;
            while (clients_running.load() > 0 && Clock::now() < until) {
                std::this_thread::sleep_for(5ms);
            }
        };
        while (clients_running.load() > 0) {
            pause(std::chrono::milliseconds(150 + rng() % 500));
            if (clients_running.load() == 0) break;
            const std::string victim = names[rng() % names.size()];
            system.kill(victim);
            ++kills;
            pause(std::chrono::milliseconds(rng() % 300));
            system.start(victim);
            ++restarts;
        }
    }
    for (auto& t : clients) t.join();
    for (const auto& name : System::names()) {
        const bool alive = system.running(name);
        REQUIRE_MESSAGE(alive, name, " is not running (",
                        op::test::describe_status(system.process(name).exit_status().value_or(-1)),
                        "); its log ends:\n", system.log_tail(name, 30));
    }

    // Quiet: every accepted order finished.
    std::set<std::string> ids;
    for (const auto& a : accepted) ids.insert(a.order_id);
    std::set<std::string> unfinished = ids;
    poll_until(60s, [&] {
        for (auto it = unfinished.begin(); it != unfinished.end();) {
            it = op::test::order_terminal(system, *it) ? unfinished.erase(it) : std::next(it);
        }
        return unfinished.empty();
    });
    if (!unfinished.empty()) {
        std::string report;
        for (const auto& id : unfinished) {
            report += id + ": " + op::test::get_json(system, "/orders/" + id).body.dump() + "\n";
            if (report.size() > 4000) break;
        }
        FAIL(unfinished.size(), " accepted orders never finished (seed ", seed, "):\n", report);
    }

    // The whole log, as the broker holds it.
    const auto log = op::test::export_log(system);
    std::map<std::string, std::map<std::string, int>> per_order;  // order -> type -> count
    std::map<std::string, std::int64_t> reserved_in_log;
    std::uint64_t previous_seq = 0;
    for (const auto& e : log) {
        CHECK(e["seq"].get<std::uint64_t>() == previous_seq + 1);  // the log has no hole
        previous_seq = e["seq"];
        per_order[e["order_id"]][e["type"]]++;
        if (e["type"] == "StockReserved") {
            reserved_in_log[e["data"]["item"]] += e["data"]["quantity"].get<std::int64_t>();
        }
    }

    std::uint64_t lost = 0;
    std::uint64_t duplicated = 0;
    for (const auto& id : ids) {
        auto it = per_order.find(id);
        if (it == per_order.end() || it->second["OrderPlaced"] != 1) {
            ++lost;  // answered 2xx, but no OrderPlaced in the log
            continue;
        }
        auto& counts = it->second;
        for (const auto& [type, n] : counts) {
            if (n > 1) ++duplicated;
            CHECK_MESSAGE(n == 1, "order ", id, " has ", n, " ", type);
        }
        const int outcomes = counts["StockReserved"] + counts["OutOfStock"] +
                             counts["PaymentFailed"];
        CHECK_MESSAGE(outcomes == 1, "order ", id, " has ", outcomes, " outcomes");
        if (counts["OutOfStock"] == 1) CHECK(counts["PaymentRefunded"] == 1);
        CHECK(counts["CustomerNotified"] == 1);
    }
    for (const auto& a : accepted) {
        if (a.answer == "success") CHECK(per_order[a.order_id]["StockReserved"] == 1);
    }

    // Stock conservation, in inventory's own database and against the log.
    const auto inventory = system.data_dir() / "inventory.db";
    for (const auto& [item, start] : initial) {
        const auto available =
            query_int(inventory, "SELECT available FROM stock WHERE item = '" + item + "'");
        const auto reserved =
            query_int(inventory, "SELECT reserved FROM stock WHERE item = '" + item + "'");
        CHECK(available >= 0);
        CHECK(available + reserved == start);
        CHECK(reserved == reserved_in_log[item]);
    }
    CHECK(query_int(system.data_dir() / "payment.db",
                    "SELECT COUNT(*) FROM payments WHERE status = 'refunded'") ==
          query_int(inventory, "SELECT COUNT(*) FROM reservations WHERE outcome = 'refused'"));
    // Every service's own record agrees with the log, one row per order it acted on.
    auto in_log = [&](const char* type) {
        std::int64_t n = 0;
        for (const auto& [order, counts] : per_order) {
            if (auto it = counts.find(type); it != counts.end()) n += it->second;
        }
        return n;
    };
    CHECK(query_int(system.data_dir() / "payment.db", "SELECT COUNT(*) FROM payments") ==
          in_log("PaymentVerified") + in_log("PaymentFailed"));
    CHECK(query_int(inventory, "SELECT COUNT(*) FROM reservations") ==
          in_log("StockReserved") + in_log("OutOfStock"));
    CHECK(query_int(system.data_dir() / "fulfilment.db", "SELECT COUNT(*) FROM shipments") ==
          in_log("Shipped"));
    CHECK(query_int(system.data_dir() / "notification.db",
                    "SELECT COUNT(*) FROM notifications") == in_log("CustomerNotified"));
    CHECK(in_log("CustomerNotified") == static_cast<std::int64_t>(ids.size()));

    const auto seconds =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count() /
        1000.0;
    MESSAGE("chaos: orders ", ids.size(), ", kills ", kills, ", restarts ", restarts, ", lost ",
            lost, ", duplicated ", duplicated, ", client retries ", errors.load(), ", seconds ",
            seconds, ", seed ", seed);
    CHECK(lost == 0);
    CHECK(duplicated == 0);
    CHECK(ids.size() == target_orders);
}
