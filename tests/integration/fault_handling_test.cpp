// What the pipeline does with the faults a user cannot see: an order stuck behind a service
// that is down (reported as stalled, finished once it returns), an event a service cannot apply
// (set aside as a DeadLetter, the service moves on), and a client retrying with an
// Idempotency-Key across an order-service restart (one order, the same answer).
#include <doctest/doctest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "inspect.hpp"
#include "op/bus/publisher.hpp"
#include "op/events/codec.hpp"
#include "op/events/ids.hpp"
#include "order_api.hpp"

using nlohmann::json;
using op::test::checkpoint_of;
using op::test::export_log;
using op::test::poll_until;
using op::test::System;
using op::test::SystemOptions;
using namespace std::chrono_literals;

namespace {

json get(System& system, const std::string& path) {
    auto a = op::test::get_json(system, path);
    REQUIRE_MESSAGE(a.status == 200, "GET ", path, " answered ", a.status, " ", a.error);
    return a.body;
}

}  // namespace

TEST_CASE("an order behind a stopped service is reported stalled, then finishes when it returns") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    options.decision_timeout_ms = 200;
    options.stall_after_ms = 500;
    System system(options);
    system.start_all();

    REQUIRE(system.stop("fulfilment") == 0);
    const auto placed = op::test::post_json(system, "/orders", R"({"item":"phone","amount":10})");
    REQUIRE(placed.status == 202);
    const std::string id = placed.body["order_id"];

    // Reserved, then nothing: after the stall bound it is listed and explained.
    REQUIRE(poll_until(10s, [&] {
        return get(system, "/orders?status=stalled")["total"] == 1;
    }));
    const json stalled_list = get(system, "/orders?status=stalled");
    CHECK(stalled_list["orders"][0]["order_id"] == id);
    json order = get(system, "/orders/" + id);
    CHECK(order["status"] == "reserved");
    CHECK(order["stalled"] == true);
    CHECK(order["stalled_for_ms"].get<std::int64_t>() >= 500);
    CHECK(order["waiting_on"] == json::array({"fulfilment"}));
    CHECK(order["terminal"] == false);

    system.start("fulfilment");
    REQUIRE(poll_until(10s, [&] { return op::test::order_terminal(system, id); }));
    order = get(system, "/orders/" + id);
    CHECK(order["status"] == "notified");
    CHECK(order["stalled"] == false);
    CHECK_FALSE(order.contains("waiting_on"));
    CHECK(get(system, "/orders?status=stalled")["total"] == 0);
    CHECK(op::test::get_json(system, "/orders?status=stuck").status == 400);
}

TEST_CASE("a poison event is dead-lettered with its reason and the service moves on and keeps working") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    System system(options);
    system.start_all();

    // A valid OutOfStock for an order payment never charged: nothing to refund, ever.
    op::events::Event ghost;
    ghost.order_id = "ghost-order";
    ghost.id = op::events::derived_id("ghost-order", "OutOfStock");
    ghost.causation_id = op::events::derived_id("ghost-order", "PaymentVerified");
    ghost.ts = op::events::now_timestamp();
    ghost.data = op::events::OutOfStock{"phone", 1, 0, "Item out of stock", ""};
    op::bus::Publisher publisher(system.client("inventory"));
    const auto published =
        publisher.publish(ghost, std::chrono::steady_clock::now() + 10s).get();
    REQUIRE(published.durable());
    publisher.stop();

    // Payment sets it aside on the DeadLetter topic, with the reason and the original.
    std::vector<json> log;
    REQUIRE(poll_until(10s, [&] {
        log = export_log(system);
        for (const auto& e : log) {
            if (e["type"] == "DeadLetter") return true;
        }
        return false;
    }));
    json dead;
    int dead_letters = 0;
    for (const auto& e : log) {
        if (e["type"] == "DeadLetter") {
            dead = e;
            ++dead_letters;
        }
    }
    CHECK(dead_letters == 1);  // notification handles the OutOfStock as a normal failure
    CHECK(dead["order_id"] == "ghost-order");
    CHECK(dead["causation_id"] == ghost.id);
    CHECK(dead["data"]["service"] == "payment");
    CHECK(dead["data"]["event_seq"] == published.seq);
    CHECK(dead["data"]["event_type"] == "OutOfStock");
    CHECK(dead["data"]["event"]["id"] == ghost.id);
    CHECK(dead["data"]["reason"].get<std::string>().find("never charged") != std::string::npos);
    for (const auto& e : log) CHECK(e["type"] != "PaymentRefunded");  // nothing half-applied

    // The checkpoint moved past it, the service is alive, and the next order goes through.
    REQUIRE(poll_until(10s, [&] { return checkpoint_of(system, "payment") >= published.seq; }));
    CHECK(system.running("payment"));
    const auto next = op::test::post_json(system, "/place-order", R"({"item":"phone","amount":10})");
    CHECK(next.status == 200);
    CHECK(next.body["status"] == "success");

    // A restart does not set it aside again: the broker holds one DeadLetter for it.
    REQUIRE(system.stop("payment") == 0);
    system.start("payment");
    const auto again = op::test::post_json(system, "/place-order", R"({"item":"phone","amount":10})");
    CHECK(again.body["status"] == "success");
    int after_restart = 0;
    for (const auto& e : export_log(system)) after_restart += e["type"] == "DeadLetter";
    CHECK(after_restart == 1);
    CHECK(system.log_tail("payment", 400).find("set aside as a DeadLetter") != std::string::npos);
}

TEST_CASE("an Idempotency-Key retried across an order-service restart gives one order, one answer") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    System system(options);
    system.start_all();

    auto post = [&](const std::string& path, const std::string& key, const std::string& body) {
        auto client = system.http();
        auto res = client.Post(path, {{"Idempotency-Key", key}}, body, "application/json");
        REQUIRE(res);
        return std::make_pair(res->status, json::parse(res->body));
    };
    const std::string body = R"({"item":"phone","amount":25})";
    const auto [status, first] = post("/place-order", "checkout-7", body);
    REQUIRE(status == 200);
    CHECK(first["status"] == "success");

    SUBCASE("the order service restarts") {
        REQUIRE(system.stop("order") == 0);
        system.start("order");
    }
    SUBCASE("the order service is killed and its read model rebuilt from the log") {
        system.kill("order");
        std::filesystem::remove(system.data_dir() / "order.db");
        std::filesystem::remove(system.data_dir() / "order.db-wal");
        std::filesystem::remove(system.data_dir() / "order.db-shm");
        system.start("order");
    }

    const auto [status2, retried] = post("/place-order", "checkout-7", body);
    CHECK(status2 == 200);
    CHECK(retried == first);
    const auto [status3, async_retry] = post("/orders", "checkout-7", body);
    CHECK(status3 == 202);
    CHECK(async_retry["order_id"] == first["order_id"]);

    // The same key with a different order is a client bug: refused, nothing placed.
    const auto [status4, conflict] = post("/place-order", "checkout-7",
                                          R"({"item":"phone","amount":99})");
    CHECK(status4 == 422);
    CHECK(conflict["error"].get<std::string>().find("Idempotency-Key") != std::string::npos);
    // Answered from the read model, none of the retries is left counted as waiting.
    CHECK(get(system, "/healthz")["waiting_requests"] == 0);

    int placed = 0;
    for (const auto& e : export_log(system)) placed += e["type"] == "OrderPlaced";
    CHECK(placed == 1);
    CHECK(get(system, "/orders")["total"] == 1);
    CHECK(get(system, "/inventory")["items"][0]["available"] == 4);
}
