#include <doctest/doctest.h>

#include "op/events/chain.hpp"
#include "op/events/ids.hpp"
#include "outcomes.hpp"

using namespace op::events;
using op::replay::compare;
using op::replay::LogOutcomes;

namespace {

// Builds an order's chain the way the services do: each event derived from the previous.
struct Flow {
    std::vector<Event> events;
    explicit Flow(const std::string& order_id, OrderPlaced placed) {
        Event e;
        e.order_id = order_id;
        e.id = derived_id(order_id, "OrderPlaced");
        e.ts = "2026-01-01T00:00:00.000000Z";
        e.data = std::move(placed);
        events.push_back(e);
    }
    Flow& then(Payload p, std::size_t cause = SIZE_MAX) {
        const Event& c = cause == SIZE_MAX ? events.back() : events[cause];
        events.push_back(derive(c, std::move(p), "2026-01-01T00:00:00.001000Z"));
        return *this;
    }
};

OrderChain chain_of(const Flow& f, std::size_t upto = SIZE_MAX) {
    OrderChain c;
    for (std::size_t i = 0; i < f.events.size() && i < upto; ++i) c.apply(f.events[i]);
    return c;
}

}  // namespace

TEST_CASE("OrderChain follows the success path step by step") {
    Flow f("o1", OrderPlaced{"phone", 1, 1000, ""});
    f.then(PaymentVerified{"phone", 1, 1000, ""})
        .then(StockReserved{"phone", 1, 9, ""})
        .then(Shipped{"phone", 1, "TRK-1", ""})
        .then(CustomerNotified{"success", "", ""});
    const std::vector<std::string> waits = {"payment", "inventory", "fulfilment", "notification"};
    for (std::size_t i = 1; i <= 4; ++i) {
        auto c = chain_of(f, i);
        CHECK_FALSE(c.terminal());
        REQUIRE(c.waiting_on().size() == 1);
        CHECK(c.waiting_on()[0] == waits[i - 1]);
        CHECK(c.decided() == (i >= 3));
    }
    auto done = chain_of(f);
    CHECK(done.terminal());
    CHECK(done.outcome() == "success");
    CHECK(done.waiting_on().empty());
}

TEST_CASE("OrderChain: a payment failure is terminal once the customer is told") {
    Flow f("o2", OrderPlaced{"phone", 1, 600000, ""});
    f.then(PaymentFailed{"Insufficient funds", 600000, ""});
    auto c = chain_of(f);
    CHECK(c.decided());
    CHECK(c.outcome() == "failed: Insufficient funds");
    CHECK_FALSE(c.terminal());
    CHECK(c.waiting_on() == std::vector<std::string>{"notification"});
    f.then(CustomerNotified{"failed", "Insufficient funds", ""});
    CHECK(chain_of(f).terminal());
}

TEST_CASE("OrderChain: out of stock needs both the refund and the notification") {
    Flow f("o3", OrderPlaced{"tablet", 1, 100, ""});
    f.then(PaymentVerified{"tablet", 1, 100, ""}).then(OutOfStock{"tablet", 1, 0, "Item out of stock", ""});
    auto c = chain_of(f);
    CHECK(c.waiting_on() == std::vector<std::string>{"payment (refund)", "notification"});
    f.then(CustomerNotified{"failed", "Item out of stock", ""}, 2);
    CHECK_FALSE(chain_of(f).terminal());
    CHECK(chain_of(f).waiting_on() == std::vector<std::string>{"payment (refund)"});
    f.then(PaymentRefunded{100, "Item out of stock"}, 2);
    CHECK(chain_of(f).terminal());
    CHECK(chain_of(f).outcome() == "failed: Item out of stock");
}

TEST_CASE("replay outcomes: identical logs compare equal, changes are named") {
    Flow ok("a", OrderPlaced{"phone", 1, 1000, ""});
    ok.then(PaymentVerified{"phone", 1, 1000, ""}).then(StockReserved{"phone", 1, 4, ""});
    Flow short_of("b", OrderPlaced{"phone", 5, 1000, ""});
    short_of.then(PaymentVerified{"phone", 5, 1000, ""}).then(OutOfStock{"phone", 5, 4, "Item out of stock", ""});
    Flow unknown("c", OrderPlaced{"gizmo", 1, 1000, ""});
    unknown.then(PaymentVerified{"gizmo", 1, 1000, ""}).then(OutOfStock{"gizmo", 1, 0, "Unknown item", ""});

    LogOutcomes recorded;
    for (const auto* f : {&ok, &short_of, &unknown}) {
        for (const auto& e : f->events) recorded.apply(e);
    }
    CHECK(recorded.order_ids == std::vector<std::string>{"a", "b", "c"});
    CHECK(recorded.final_stock.at("phone") == 4);
    CHECK_FALSE(recorded.final_stock.contains("gizmo"));  // an unknown item has no level
    CHECK(compare(recorded, recorded).empty());

    SUBCASE("an order with another outcome") {
        Flow refused("a", OrderPlaced{"phone", 1, 1000, ""});
        refused.then(PaymentFailed{"Insufficient funds", 1000, ""});
        LogOutcomes replayed;
        for (const auto& e : refused.events) replayed.apply(e);
        for (const auto* f : {&short_of, &unknown}) {
            for (const auto& e : f->events) replayed.apply(e);
        }
        auto diffs = compare(recorded, replayed);
        // Order b's OutOfStock still reports phone at 4, so only order a differs.
        REQUIRE(diffs.size() == 1);
        CHECK(diffs[0].order_id == "a");
        CHECK(diffs[0].recorded == "success");
        CHECK(diffs[0].replayed == "failed: Insufficient funds");
    }
    SUBCASE("an order that never ran") {
        LogOutcomes replayed;
        for (const auto& e : ok.events) replayed.apply(e);
        auto diffs = compare(recorded, replayed);
        REQUIRE(diffs.size() == 2);  // b and c never ran
        CHECK(diffs[0].order_id == "b");
        CHECK(diffs[0].replayed == "missing");
        CHECK(diffs[1].order_id == "c");
    }
}
