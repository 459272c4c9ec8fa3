// Unit tests of the fulfilment handler (StockReserved -> Shipped, once per order) and the
// notification handler (one CustomerNotified per order outcome) and its outbox line.
#include "fulfilment_service.hpp"
#include "notification_service.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <string>
#include <vector>

#include "op/events/event.hpp"
#include "op/events/ids.hpp"

namespace {

using namespace op::events;
using op::fulfilment::FulfilmentService;
using op::notification::NotificationService;
using op::store::Db;

constexpr const char* kNow = "2026-11-24T22:11:00.000Z";

Event placed(const std::string& order_id, const std::string& customer = "alice") {
    Event e;
    e.order_id = order_id;
    e.id = derived_id(order_id, "OrderPlaced");
    e.seq = 1;
    e.ts = "2026-11-24T22:10:56.123Z";
    e.data = OrderPlaced{"phone", 2, 2000, customer};
    return e;
}

Event next(const Event& cause, Payload data) {
    Event e = derive(cause, std::move(data), "2026-11-24T22:10:57.000Z");
    e.seq = cause.seq + 1;
    return e;
}

Event verified(const std::string& order_id, const std::string& customer = "alice") {
    return next(placed(order_id, customer), PaymentVerified{"phone", 2, 2000, customer});
}

Event reserved(const std::string& order_id, const std::string& customer = "alice") {
    return next(verified(order_id, customer), StockReserved{"phone", 2, 8, customer});
}

Event shipped(const std::string& order_id, const std::string& customer = "alice") {
    return next(reserved(order_id, customer),
                Shipped{"phone", 2, "TRK-0123456789AB", customer});
}

Event payment_failed(const std::string& order_id, const std::string& customer = "alice") {
    return next(placed(order_id, customer), PaymentFailed{"Insufficient funds", 600000, customer});
}

Event out_of_stock(const std::string& order_id, const std::string& reason = "Item out of stock",
                   const std::string& customer = "alice") {
    return next(verified(order_id, customer), OutOfStock{"phone", 2, 1, reason, customer});
}

}  // namespace

TEST_CASE("fulfilment: StockReserved -> Shipped with a TRK- tracking id") {
    Db db(":memory:");
    FulfilmentService service(db);
    const Event cause = reserved("o-1", "dave");
    const auto out = service.handle(cause, kNow);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].type() == EventType::Shipped);
    const auto* s = out[0].as<Shipped>();
    CHECK(s->item == "phone");
    CHECK(s->quantity == 2);
    CHECK(s->customer == "dave");
    CHECK(out[0].order_id == "o-1");
    CHECK(out[0].causation_id == cause.id);
    CHECK(out[0].id == derived_id(cause.id, "Shipped"));
    CHECK(out[0].ts == kNow);

    const std::string& trk = s->tracking_id;
    REQUIRE(trk.size() == 16);
    CHECK(trk.rfind("TRK-", 0) == 0);
    for (char c : trk.substr(4)) {
        const bool upper_hex = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
        CHECK_MESSAGE(upper_hex, trk);
    }
}

TEST_CASE("fulfilment: the tracking id is deterministic for the same cause, distinct per order") {
    const Event cause = reserved("o-1");
    std::string first;
    {
        Db db(":memory:");
        FulfilmentService service(db);
        const auto out = service.handle(cause, kNow);
        REQUIRE(out.size() == 1);
        first = out[0].as<Shipped>()->tracking_id;
    }
    Db db(":memory:");
    FulfilmentService service(db);
    const auto again = service.handle(cause, "another time");
    REQUIRE(again.size() == 1);
    CHECK(again[0].as<Shipped>()->tracking_id == first);
    CHECK(again[0].id == derived_id(cause.id, "Shipped"));

    const auto other = service.handle(reserved("o-2"), kNow);
    REQUIRE(other.size() == 1);
    CHECK(other[0].as<Shipped>()->tracking_id != first);
}

TEST_CASE("fulfilment: a duplicate StockReserved ships nothing") {
    Db db(":memory:");
    FulfilmentService service(db);
    const Event cause = reserved("o-1");
    REQUIRE(service.handle(cause, kNow).size() == 1);
    CHECK(service.handle(cause, kNow).empty());
    Event redelivered = cause;
    redelivered.seq = 50;
    CHECK(service.handle(redelivered, kNow).empty());
    FulfilmentService restarted(db);
    CHECK(restarted.handle(cause, kNow).empty());
}

TEST_CASE("fulfilment: other event types produce nothing") {
    Db db(":memory:");
    FulfilmentService service(db);
    CHECK(service.handle(placed("o-1"), kNow).empty());
    CHECK(service.handle(verified("o-1"), kNow).empty());
    CHECK(service.handle(out_of_stock("o-1"), kNow).empty());
    CHECK(service.handle(shipped("o-1"), kNow).empty());
    CHECK(service.handle(payment_failed("o-1"), kNow).empty());
    // ... and the order can still ship afterwards.
    CHECK(service.handle(reserved("o-1"), kNow).size() == 1);
    const auto topics = FulfilmentService::topics();
    REQUIRE(topics.size() == 1);
    CHECK(topics[0] == EventType::StockReserved);
}

TEST_CASE("notification: Shipped -> CustomerNotified success") {
    Db db(":memory:");
    NotificationService service(db);
    const Event cause = shipped("o-1", "erin");
    const auto out = service.handle(cause, kNow);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].type() == EventType::CustomerNotified);
    const auto* n = out[0].as<CustomerNotified>();
    CHECK(n->outcome == "success");
    CHECK(n->reason.empty());
    CHECK(n->customer == "erin");
    CHECK(out[0].order_id == "o-1");
    CHECK(out[0].causation_id == cause.id);
    CHECK(out[0].id == derived_id(cause.id, "CustomerNotified"));
}

TEST_CASE("notification: PaymentFailed -> CustomerNotified failed with the reason") {
    Db db(":memory:");
    NotificationService service(db);
    const Event cause = payment_failed("o-1", "frank");
    const auto out = service.handle(cause, kNow);
    REQUIRE(out.size() == 1);
    const auto* n = out[0].as<CustomerNotified>();
    REQUIRE(n != nullptr);
    CHECK(n->outcome == "failed");
    CHECK(n->reason == "Insufficient funds");
    CHECK(n->customer == "frank");
    CHECK(out[0].causation_id == cause.id);
}

TEST_CASE("notification: OutOfStock -> CustomerNotified failed with the reason") {
    Db db(":memory:");
    NotificationService service(db);
    SUBCASE("Item out of stock") {
        const auto out = service.handle(out_of_stock("o-1", "Item out of stock", "gus"), kNow);
        REQUIRE(out.size() == 1);
        const auto* n = out[0].as<CustomerNotified>();
        REQUIRE(n != nullptr);
        CHECK(n->outcome == "failed");
        CHECK(n->reason == "Item out of stock");
        CHECK(n->customer == "gus");
    }
    SUBCASE("Unknown item") {
        const auto out = service.handle(out_of_stock("o-1", "Unknown item"), kNow);
        REQUIRE(out.size() == 1);
        CHECK(out[0].as<CustomerNotified>()->reason == "Unknown item");
    }
}

TEST_CASE("notification: a second outcome event for the same order produces nothing") {
    Db db(":memory:");
    NotificationService service(db);
    SUBCASE("same event redelivered") {
        REQUIRE(service.handle(shipped("o-1"), kNow).size() == 1);
        CHECK(service.handle(shipped("o-1"), kNow).empty());
    }
    SUBCASE("a different outcome event for a notified order") {
        REQUIRE(service.handle(payment_failed("o-1"), kNow).size() == 1);
        CHECK(service.handle(out_of_stock("o-1"), kNow).empty());
        CHECK(service.handle(shipped("o-1"), kNow).empty());
    }
    SUBCASE("after a restart over the same database") {
        REQUIRE(service.handle(out_of_stock("o-1"), kNow).size() == 1);
        NotificationService restarted(db);
        CHECK(restarted.handle(out_of_stock("o-1"), kNow).empty());
    }
    // Other orders are unaffected.
    CHECK(service.handle(shipped("o-2"), kNow).size() == 1);
}

TEST_CASE("notification: events that are not outcomes produce nothing") {
    Db db(":memory:");
    NotificationService service(db);
    CHECK(service.handle(placed("o-1"), kNow).empty());
    CHECK(service.handle(verified("o-1"), kNow).empty());
    CHECK(service.handle(reserved("o-1"), kNow).empty());
    CHECK(service.handle(next(placed("o-1"), PaymentRefunded{2000, "Item out of stock"}), kNow)
              .empty());
    CHECK(service.handle(next(shipped("o-1"), CustomerNotified{"success", "", ""}), kNow).empty());
    // None of them used up the order's one notification.
    CHECK(service.handle(shipped("o-1"), kNow).size() == 1);
    const auto topics = NotificationService::topics();
    CHECK(topics.size() == 3);
}

TEST_CASE("notification: outbox_line is one line of JSON with the outcome") {
    Db db(":memory:");
    NotificationService service(db);
    SUBCASE("failure carries the reason") {
        const auto out = service.handle(payment_failed("o-1", "hank"), kNow);
        REQUIRE(out.size() == 1);
        const std::string line = NotificationService::outbox_line(out[0]);
        CHECK(line.find('\n') == std::string::npos);
        const auto j = nlohmann::json::parse(line);
        CHECK(j["order_id"] == "o-1");
        CHECK(j["outcome"] == "failed");
        CHECK(j["reason"] == "Insufficient funds");
        CHECK(j["customer"] == "hank");
        CHECK(j["ts"] == kNow);
        CHECK(j["notification_id"] == out[0].id);  // the same on a repeat, for de-duplication
    }
    SUBCASE("success has no reason") {
        const auto out = service.handle(shipped("o-2"), kNow);
        REQUIRE(out.size() == 1);
        const std::string line = NotificationService::outbox_line(out[0]);
        CHECK(line.find('\n') == std::string::npos);
        const auto j = nlohmann::json::parse(line);
        CHECK(j["order_id"] == "o-2");
        CHECK(j["outcome"] == "success");
        CHECK_FALSE(j.contains("reason"));
    }
    SUBCASE("newlines inside fields stay escaped on one line") {
        Event e = next(shipped("o-3"), CustomerNotified{"failed", "line1\nline2", "a\r\nb"});
        const std::string line = NotificationService::outbox_line(e);
        CHECK(line.find('\n') == std::string::npos);
        CHECK(line.find('\r') == std::string::npos);
        CHECK(nlohmann::json::parse(line)["reason"] == "line1\nline2");
    }
    SUBCASE("not a CustomerNotified: empty") {
        CHECK(NotificationService::outbox_line(shipped("o-4")).empty());
    }
}
