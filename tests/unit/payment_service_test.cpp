// Unit tests of the payment handler: charge within the limit, refuse above it, refund on
// OutOfStock, and never act twice for one order.
#include "payment_service.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "op/events/event.hpp"
#include "op/events/ids.hpp"
#include "op/service/runner.hpp"

namespace {

using namespace op::events;
using op::payment::PaymentConfig;
using op::payment::PaymentService;
using op::store::Db;

constexpr const char* kNow = "2026-11-24T22:10:57.000Z";

Event placed(const std::string& order_id, Cents amount, std::uint64_t seq = 1,
             const std::string& item = "phone", std::int64_t quantity = 1,
             const std::string& customer = "alice") {
    Event e;
    e.order_id = order_id;
    e.id = derived_id(order_id, "OrderPlaced");
    e.seq = seq;
    e.ts = "2026-11-24T22:10:56.123Z";
    e.data = OrderPlaced{item, quantity, amount, customer};
    return e;
}

Event with_seq(Event e, std::uint64_t seq) {
    e.seq = seq;
    return e;
}

// The OutOfStock inventory would publish in answer to `verified`.
Event out_of_stock(const Event& verified, const std::string& reason = "Item out of stock",
                   std::uint64_t seq = 3) {
    const auto& p = std::get<PaymentVerified>(verified.data);
    return with_seq(derive(verified, OutOfStock{p.item, p.quantity, 0, reason, p.customer},
                           "2026-11-24T22:10:58.000Z"),
                    seq);
}

}  // namespace

TEST_CASE("payment: OrderPlaced within the limit -> PaymentVerified with the order's fields") {
    Db db(":memory:");
    PaymentService service(db, PaymentConfig{});
    const Event cause = placed("order-1", 100000, 1, "laptop", 3, "alice");
    const auto out = service.handle(cause, kNow);
    REQUIRE(out.size() == 1);
    const Event& e = out[0];
    REQUIRE(e.type() == EventType::PaymentVerified);
    const auto* p = e.as<PaymentVerified>();
    CHECK(p->item == "laptop");
    CHECK(p->quantity == 3);
    CHECK(p->amount_cents == 100000);
    CHECK(p->customer == "alice");
    CHECK(e.order_id == "order-1");
    CHECK(e.causation_id == cause.id);
    CHECK(e.id == derived_id(cause.id, "PaymentVerified"));
    CHECK(e.ts == kNow);
    CHECK(e.seq == 0);
}

TEST_CASE("payment: the derived id is deterministic across fresh services and databases") {
    const Event cause = placed("order-1", 100000);
    std::string first_id;
    {
        Db db(":memory:");
        PaymentService service(db, PaymentConfig{});
        const auto out = service.handle(cause, kNow);
        REQUIRE(out.size() == 1);
        first_id = out[0].id;
    }
    Db db(":memory:");
    PaymentService service(db, PaymentConfig{});
    const auto out = service.handle(cause, "a later time");
    REQUIRE(out.size() == 1);
    CHECK(out[0].id == first_id);
    // Another order gets another id.
    const auto other = service.handle(placed("order-2", 100000), kNow);
    REQUIRE(other.size() == 1);
    CHECK(other[0].id != first_id);
}

TEST_CASE("payment: the default limit is 5000.00, inclusive") {
    Db db(":memory:");
    PaymentService service(db, PaymentConfig{});
    CHECK(PaymentConfig{}.limit_cents == 500000);

    SUBCASE("amount == limit passes") {
        const auto out = service.handle(placed("o-eq", 500000), kNow);
        REQUIRE(out.size() == 1);
        CHECK(out[0].type() == EventType::PaymentVerified);
    }
    SUBCASE("limit + 1 cent fails with Insufficient funds") {
        const Event cause = placed("o-over", 500001, 1, "phone", 1, "bob");
        const auto out = service.handle(cause, kNow);
        REQUIRE(out.size() == 1);
        REQUIRE(out[0].type() == EventType::PaymentFailed);
        const auto* p = out[0].as<PaymentFailed>();
        CHECK(p->reason == "Insufficient funds");
        CHECK(p->reason == op::payment::kInsufficientFunds);
        CHECK(p->amount_cents == 500001);
        CHECK(p->customer == "bob");
        CHECK(out[0].causation_id == cause.id);
        CHECK(out[0].id == derived_id(cause.id, "PaymentFailed"));
    }
    SUBCASE("a huge amount fails") {
        const auto out = service.handle(placed("o-huge", 1'000'000'000'000), kNow);
        REQUIRE(out.size() == 1);
        CHECK(out[0].type() == EventType::PaymentFailed);
    }
    SUBCASE("one cent passes") {
        const auto out = service.handle(placed("o-cent", 1), kNow);
        REQUIRE(out.size() == 1);
        CHECK(out[0].type() == EventType::PaymentVerified);
    }
}

TEST_CASE("payment: the limit is configurable") {
    Db db(":memory:");
    PaymentService service(db, PaymentConfig{1000});
    const auto at = service.handle(placed("o-1", 1000), kNow);
    REQUIRE(at.size() == 1);
    CHECK(at[0].type() == EventType::PaymentVerified);
    const auto over = service.handle(placed("o-2", 1001), kNow);
    REQUIRE(over.size() == 1);
    CHECK(over[0].type() == EventType::PaymentFailed);
    // 5000.00 is fine by default but above this limit.
    const auto usual = service.handle(placed("o-3", 500000), kNow);
    REQUIRE(usual.size() == 1);
    CHECK(usual[0].type() == EventType::PaymentFailed);
}

TEST_CASE("payment: a second OrderPlaced for the same order produces nothing") {
    Db db(":memory:");
    PaymentService service(db, PaymentConfig{});
    SUBCASE("after a verified payment") {
        REQUIRE(service.handle(placed("o-1", 100), kNow).size() == 1);
        CHECK(service.handle(placed("o-1", 100), kNow).empty());
        CHECK(service.handle(placed("o-1", 100, 9), kNow).empty());
        // even with another amount: the order is charged once
        CHECK(service.handle(placed("o-1", 900000, 10), kNow).empty());
    }
    SUBCASE("after a failed payment") {
        REQUIRE(service.handle(placed("o-1", 900000), kNow).size() == 1);
        CHECK(service.handle(placed("o-1", 900000), kNow).empty());
        CHECK(service.handle(placed("o-1", 100, 5), kNow).empty());
    }
}

TEST_CASE("payment: state survives a new service over the same database") {
    Db db(":memory:");
    {
        PaymentService service(db, PaymentConfig{});
        REQUIRE(service.handle(placed("o-1", 100), kNow).size() == 1);
    }
    PaymentService restarted(db, PaymentConfig{});
    CHECK(restarted.handle(placed("o-1", 100), kNow).empty());
}

TEST_CASE("payment: OutOfStock after a verified payment -> PaymentRefunded, once") {
    Db db(":memory:");
    PaymentService service(db, PaymentConfig{});
    const auto verified = service.handle(placed("o-1", 123456, 1, "laptop", 2, "carol"), kNow);
    REQUIRE(verified.size() == 1);
    const Event paid = with_seq(verified[0], 2);

    SUBCASE("Item out of stock") {
        const Event shortage = out_of_stock(paid, "Item out of stock");
        const auto out = service.handle(shortage, kNow);
        REQUIRE(out.size() == 1);
        REQUIRE(out[0].type() == EventType::PaymentRefunded);
        const auto* r = out[0].as<PaymentRefunded>();
        CHECK(r->amount_cents == 123456);
        CHECK(r->reason == "Item out of stock");
        CHECK(out[0].order_id == "o-1");
        CHECK(out[0].causation_id == shortage.id);
        CHECK(out[0].id == derived_id(shortage.id, "PaymentRefunded"));

        SUBCASE("a second OutOfStock produces nothing") {
            CHECK(service.handle(shortage, kNow).empty());
            CHECK(service.handle(with_seq(shortage, 7), kNow).empty());
        }
        SUBCASE("a late duplicate OrderPlaced does not charge again") {
            CHECK(service.handle(placed("o-1", 123456), kNow).empty());
        }
    }
    SUBCASE("Unknown item carries its own reason into the refund") {
        const auto out = service.handle(out_of_stock(paid, "Unknown item"), kNow);
        REQUIRE(out.size() == 1);
        CHECK(out[0].as<PaymentRefunded>()->reason == "Unknown item");
    }
}

TEST_CASE("payment: OutOfStock for an unknown order or a failed payment is poison") {
    Db db(":memory:");
    PaymentService service(db, PaymentConfig{});

    SUBCASE("never charged") {
        Event fake_verified = derive(placed("ghost", 100), PaymentVerified{"phone", 1, 100, ""},
                                     kNow);
        CHECK_THROWS_AS(service.handle(out_of_stock(fake_verified), kNow),
                        op::service::PoisonEvent);
    }
    SUBCASE("payment failed") {
        REQUIRE(service.handle(placed("o-f", 600000), kNow).size() == 1);
        Event fake_verified = derive(placed("o-f", 600000),
                                     PaymentVerified{"phone", 1, 600000, ""}, kNow);
        CHECK_THROWS_WITH_AS(service.handle(out_of_stock(fake_verified), kNow),
                             doctest::Contains("payment failed"), op::service::PoisonEvent);
    }
}

TEST_CASE("payment: other event types produce nothing") {
    Db db(":memory:");
    PaymentService service(db, PaymentConfig{});
    const Event cause = placed("o-1", 100);
    REQUIRE(service.handle(cause, kNow).size() == 1);
    const std::vector<Payload> others = {
        PaymentVerified{"phone", 1, 100, ""},
        PaymentFailed{"Insufficient funds", 100, ""},
        StockReserved{"phone", 1, 5, ""},
        PaymentRefunded{100, "Item out of stock"},
        Shipped{"phone", 1, "TRK-1", ""},
        CustomerNotified{"success", "", ""},
    };
    for (const auto& payload : others) {
        const Event e = derive(cause, payload, kNow);
        CAPTURE(e.type_name());
        CHECK(service.handle(e, kNow).empty());
    }
    // Nothing above changed the payment: OutOfStock still refunds it once.
    const Event paid = derive(cause, PaymentVerified{"phone", 1, 100, ""}, kNow);
    CHECK(service.handle(out_of_stock(paid), kNow).size() == 1);
}

TEST_CASE("payment: topics are OrderPlaced and OutOfStock") {
    const auto topics = PaymentService::topics();
    REQUIRE(topics.size() == 2);
    CHECK(topics[0] == EventType::OrderPlaced);
    CHECK(topics[1] == EventType::OutOfStock);
}
