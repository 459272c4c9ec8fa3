// Unit tests of the order service's read model: status and timeline from the event chain,
// terminal/decided rules, idempotent apply, listing with filters and pages, and stock view.
#include "read_model.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "op/events/event.hpp"
#include "op/events/ids.hpp"

namespace {

using namespace op::events;
using op::order::Decision;
using op::order::OrderView;
using op::order::ReadModel;
using op::store::Db;

// Builds one order's chain as the services would, with broker seqs taken from a shared counter
// so several orders interleave like on the real log.
struct Chain {
    std::uint64_t& seq;
    std::string order_id;
    std::string customer = "alice";

    std::string ts(std::uint64_t s) const {
        const auto sec = s % 60;
        return "2026-11-24T22:" + std::string(s / 60 % 60 < 10 ? "0" : "") +
               std::to_string(s / 60 % 60) + ":" + (sec < 10 ? "0" : "") + std::to_string(sec) +
               ".000Z";
    }

    Event placed(const std::string& item = "phone", std::int64_t quantity = 1,
                 Cents amount = 100000) {
        Event e;
        e.order_id = order_id;
        e.id = derived_id(order_id, "OrderPlaced");
        e.seq = ++seq;
        e.ts = ts(e.seq);
        e.data = OrderPlaced{item, quantity, amount, customer};
        return e;
    }
    Event after(const Event& cause, Payload data) {
        Event e = derive(cause, std::move(data), "");
        e.seq = ++seq;
        e.ts = ts(e.seq);
        return e;
    }
};

struct SuccessChain {
    Event placed, verified, reserved, shipped, notified;
};

SuccessChain success_chain(std::uint64_t& seq, const std::string& order_id,
                           const std::string& item = "phone", std::int64_t remaining = 99) {
    Chain c{seq, order_id};
    SuccessChain s;
    s.placed = c.placed(item, 1, 100000);
    s.verified = c.after(s.placed, PaymentVerified{item, 1, 100000, c.customer});
    s.reserved = c.after(s.verified, StockReserved{item, 1, remaining, c.customer});
    s.shipped = c.after(s.reserved, Shipped{item, 1, "TRK-0123456789AB", c.customer});
    s.notified = c.after(s.shipped, CustomerNotified{"success", "", c.customer});
    return s;
}

struct PaymentFailureChain {
    Event placed, failed, notified;
};

PaymentFailureChain payment_failure_chain(std::uint64_t& seq, const std::string& order_id) {
    Chain c{seq, order_id};
    PaymentFailureChain f;
    f.placed = c.placed("phone", 1, 600000);
    f.failed = c.after(f.placed, PaymentFailed{"Insufficient funds", 600000, c.customer});
    f.notified = c.after(f.failed, CustomerNotified{"failed", "Insufficient funds", c.customer});
    return f;
}

struct OutOfStockChain {
    Event placed, verified, shortage, refunded, notified;
};

// Refund and notification both follow OutOfStock; `refund_first` picks their seq order.
OutOfStockChain out_of_stock_chain(std::uint64_t& seq, const std::string& order_id,
                                   bool refund_first, std::int64_t available = 2,
                                   const std::string& reason = "Item out of stock") {
    Chain c{seq, order_id};
    OutOfStockChain o;
    o.placed = c.placed("laptop", 5, 250000);
    o.verified = c.after(o.placed, PaymentVerified{"laptop", 5, 250000, c.customer});
    o.shortage = c.after(o.verified, OutOfStock{"laptop", 5, available, reason, c.customer});
    if (refund_first) {
        o.refunded = c.after(o.shortage, PaymentRefunded{250000, reason});
        o.notified = c.after(o.shortage, CustomerNotified{"failed", reason, c.customer});
    } else {
        o.notified = c.after(o.shortage, CustomerNotified{"failed", reason, c.customer});
        o.refunded = c.after(o.shortage, PaymentRefunded{250000, reason});
    }
    return o;
}

OrderView view(ReadModel& model, const std::string& order_id) {
    const auto v = model.order(order_id);
    REQUIRE(v.has_value());
    return *v;
}

}  // namespace

TEST_CASE("read model: the success chain ends notified and terminal, with the tracking id") {
    Db db(":memory:");
    ReadModel model(db);
    std::uint64_t seq = 0;
    const auto s = success_chain(seq, "o-1");

    CHECK_FALSE(model.order("o-1").has_value());

    CHECK_FALSE(model.apply(s.placed));
    auto v = view(model, "o-1");
    CHECK(v.status == "placed");
    CHECK(v.item == "phone");
    CHECK(v.quantity == 1);
    CHECK(v.amount_cents == 100000);
    CHECK(v.customer == "alice");
    CHECK(v.placed_at == s.placed.ts);
    CHECK_FALSE(v.paid);
    CHECK_FALSE(v.decided());
    CHECK_FALSE(v.decision().has_value());
    CHECK_FALSE(v.terminal());

    CHECK_FALSE(model.apply(s.verified));
    v = view(model, "o-1");
    CHECK(v.status == "paid");
    CHECK(v.paid);
    CHECK_FALSE(v.decided());

    CHECK(model.apply(s.reserved) == Decision{});  // the decision: success
    v = view(model, "o-1");
    CHECK(v.status == "reserved");
    CHECK(v.decided());
    CHECK(v.decision() == Decision{false, ""});
    CHECK_FALSE(v.terminal());

    CHECK_FALSE(model.apply(s.shipped));
    v = view(model, "o-1");
    CHECK(v.status == "shipped");
    CHECK(v.tracking_id == "TRK-0123456789AB");
    CHECK(v.decided());
    CHECK_FALSE(v.terminal());

    CHECK_FALSE(model.apply(s.notified));
    v = view(model, "o-1");
    CHECK(v.status == "notified");
    CHECK(v.notified);
    CHECK(v.decided());
    CHECK(v.terminal());
    CHECK(v.reason.empty());
    CHECK_FALSE(v.refunded);
    CHECK(v.tracking_id == "TRK-0123456789AB");
    CHECK(v.placed_at == s.placed.ts);
    CHECK(v.updated_at == s.notified.ts);
}

TEST_CASE("read model: the timeline lists the events in seq order with causation ids") {
    Db db(":memory:");
    ReadModel model(db);
    std::uint64_t seq = 100;
    const auto s = success_chain(seq, "o-1");
    // Apply out of order: the timeline is still sorted by seq.
    for (const Event* e : {&s.placed, &s.shipped, &s.verified, &s.notified, &s.reserved}) {
        model.apply(*e);
    }
    const auto tl = model.timeline("o-1");
    REQUIRE(tl.size() == 5);
    const std::vector<const Event*> expected = {&s.placed, &s.verified, &s.reserved, &s.shipped,
                                                &s.notified};
    for (std::size_t i = 0; i < tl.size(); ++i) {
        CAPTURE(i);
        CHECK(tl[i].seq == expected[i]->seq);
        CHECK(tl[i].type == std::string(expected[i]->type_name()));
        CHECK(tl[i].id == expected[i]->id);
        CHECK(tl[i].causation_id == expected[i]->causation_id);
        CHECK(tl[i].ts == expected[i]->ts);
        if (i > 0) {
            CHECK(tl[i].seq > tl[i - 1].seq);
            CHECK(tl[i].causation_id == tl[i - 1].id);  // each caused by the one before
        }
    }
    CHECK(tl[0].causation_id.empty());
    CHECK(model.timeline("nobody").empty());
}

TEST_CASE("read model: payment failure -> failed 'Insufficient funds', terminal once notified") {
    Db db(":memory:");
    ReadModel model(db);
    std::uint64_t seq = 0;
    const auto f = payment_failure_chain(seq, "o-1");
    CHECK_FALSE(model.apply(f.placed));
    CHECK(model.apply(f.failed) == Decision{true, "Insufficient funds"});
    auto v = view(model, "o-1");
    CHECK(v.status == "failed");
    CHECK(v.reason == "Insufficient funds");
    CHECK_FALSE(v.paid);
    CHECK(v.decided());
    CHECK(v.decision() == Decision{true, "Insufficient funds"});
    CHECK_FALSE(v.terminal());  // the customer is not told yet

    CHECK_FALSE(model.apply(f.notified));
    v = view(model, "o-1");
    CHECK(v.status == "failed");
    CHECK(v.reason == "Insufficient funds");
    CHECK(v.notified);
    CHECK(v.terminal());
    CHECK(model.timeline("o-1").size() == 3);
}

namespace {

void check_out_of_stock_chain(bool refund_first) {
    CAPTURE(refund_first);
    Db db(":memory:");
    ReadModel model(db);
    std::uint64_t seq = 0;
    const auto o = out_of_stock_chain(seq, "o-1", refund_first);

    CHECK_FALSE(model.apply(o.placed));
    CHECK_FALSE(model.apply(o.verified));
    CHECK(model.apply(o.shortage) == Decision{true, "Item out of stock"});
    auto v = view(model, "o-1");
    CHECK(v.status == "failed");
    CHECK(v.reason == "Item out of stock");
    CHECK(v.paid);
    CHECK_FALSE(v.refunded);
    CHECK(v.decided());
    CHECK_FALSE(v.terminal());

    const Event& first = refund_first ? o.refunded : o.notified;
    const Event& second = refund_first ? o.notified : o.refunded;
    CHECK(first.seq < second.seq);
    CHECK_FALSE(model.apply(first));
    v = view(model, "o-1");
    CHECK(v.status == "failed");
    CHECK(v.refunded == refund_first);
    CHECK(v.notified == !refund_first);
    CHECK_FALSE(v.terminal());

    CHECK_FALSE(model.apply(second));
    v = view(model, "o-1");
    CHECK(v.status == "failed");
    CHECK(v.reason == "Item out of stock");
    CHECK(v.refunded);
    CHECK(v.notified);
    CHECK(v.terminal());
    CHECK(model.timeline("o-1").size() == 5);
}

}  // namespace

TEST_CASE("read model: out of stock -> failed and refunded, terminal only when both arrived") {
    SUBCASE("PaymentRefunded before CustomerNotified") { check_out_of_stock_chain(true); }
    SUBCASE("PaymentRefunded after CustomerNotified") { check_out_of_stock_chain(false); }
}

TEST_CASE("read model: applying the same event twice changes nothing") {
    Db db(":memory:");
    ReadModel model(db);
    std::uint64_t seq = 0;
    const auto s = success_chain(seq, "o-1");
    const auto o = out_of_stock_chain(seq, "o-2", true);

    // Apply every event twice in a row; the second apply reports no decision.
    for (const Event* e : {&s.placed, &s.verified, &s.reserved, &s.shipped, &s.notified,
                           &o.placed, &o.verified, &o.shortage, &o.refunded, &o.notified}) {
        CAPTURE(e->type_name());
        model.apply(*e);
        const auto before = view(model, e->order_id);
        const auto timeline_before = model.timeline(e->order_id).size();
        CHECK_FALSE(model.apply(*e));
        const auto after = view(model, e->order_id);
        CHECK(after.status == before.status);
        CHECK(after.updated_at == before.updated_at);
        CHECK(after.paid == before.paid);
        CHECK(after.refunded == before.refunded);
        CHECK(after.notified == before.notified);
        CHECK(model.timeline(e->order_id).size() == timeline_before);
    }

    SUBCASE("a late replay of an old event does not roll the status back") {
        CHECK_FALSE(model.apply(s.verified));
        CHECK_FALSE(model.apply(s.placed));
        CHECK_FALSE(model.apply(s.reserved));
        const auto v = view(model, "o-1");
        CHECK(v.status == "notified");
        CHECK(v.terminal());
        CHECK(model.count("") == 2);
    }
}

TEST_CASE("read model: apply returns a decision exactly for PaymentFailed, StockReserved, OutOfStock") {
    Db db(":memory:");
    ReadModel model(db);
    std::uint64_t seq = 0;
    const auto s = success_chain(seq, "o-1");
    const auto f = payment_failure_chain(seq, "o-2");
    const auto o = out_of_stock_chain(seq, "o-3", false);

    const std::vector<const Event*> all = {&s.placed, &s.verified,  &s.reserved, &s.shipped,
                                           &s.notified, &f.placed,  &f.failed,   &f.notified,
                                           &o.placed, &o.verified,  &o.shortage, &o.notified,
                                           &o.refunded};
    int decisions = 0;
    for (const Event* e : all) {
        CAPTURE(e->type_name());
        const bool decision = e->type() == EventType::PaymentFailed ||
                              e->type() == EventType::StockReserved ||
                              e->type() == EventType::OutOfStock;
        const bool applied = model.apply(*e).has_value();
        CHECK(applied == decision);
        decisions += applied ? 1 : 0;
    }
    CHECK(decisions == 3);
}

TEST_CASE("read model: orders() filters by status and paginates and count() agrees") {
    Db db(":memory:");
    ReadModel model(db);
    std::uint64_t seq = 0;
    // 5 notified, 4 failed (payment), 1 still placed, in interleaved placement order.
    std::vector<std::string> notified_ids, failed_ids, placed_ids, all_ids;
    for (int i = 0; i < 10; ++i) {
        const std::string id = "o-" + std::to_string(i);
        all_ids.push_back(id);
        if (i % 2 == 0) {
            const auto s = success_chain(seq, id);
            for (const Event* e : {&s.placed, &s.verified, &s.reserved, &s.shipped, &s.notified}) {
                model.apply(*e);
            }
            notified_ids.push_back(id);
        } else if (i % 4 != 3 || i == 3) {
            const auto f = payment_failure_chain(seq, id);
            for (const Event* e : {&f.placed, &f.failed, &f.notified}) model.apply(*e);
            failed_ids.push_back(id);
        } else {
            Chain c{seq, id};
            model.apply(c.placed());
            placed_ids.push_back(id);
        }
    }
    REQUIRE(notified_ids.size() == 5);
    REQUIRE(failed_ids.size() + placed_ids.size() == 5);

    auto ids_of = [](const std::vector<OrderView>& views) {
        std::vector<std::string> out;
        for (const auto& v : views) out.push_back(v.order_id);
        return out;
    };

    CHECK(model.count("") == 10);
    CHECK(model.count("notified") == 5);
    CHECK(model.count("failed") == static_cast<std::int64_t>(failed_ids.size()));
    CHECK(model.count("placed") == static_cast<std::int64_t>(placed_ids.size()));
    CHECK(model.count("shipped") == 0);
    CHECK(model.count("no-such-status") == 0);

    // All orders, in placement order.
    CHECK(ids_of(model.orders("", 100, 0)) == all_ids);
    // Filter.
    CHECK(ids_of(model.orders("notified", 100, 0)) == notified_ids);
    CHECK(ids_of(model.orders("failed", 100, 0)) == failed_ids);
    CHECK(ids_of(model.orders("placed", 100, 0)) == placed_ids);
    for (const auto& v : model.orders("failed", 100, 0)) {
        CHECK(v.status == "failed");
        CHECK(v.reason == "Insufficient funds");
    }
    // Pages.
    CHECK(ids_of(model.orders("", 3, 0)) ==
          std::vector<std::string>(all_ids.begin(), all_ids.begin() + 3));
    CHECK(ids_of(model.orders("", 3, 3)) ==
          std::vector<std::string>(all_ids.begin() + 3, all_ids.begin() + 6));
    CHECK(ids_of(model.orders("", 3, 9)) == std::vector<std::string>{all_ids[9]});
    CHECK(model.orders("", 3, 10).empty());
    CHECK(model.orders("", 0, 0).empty());
    CHECK(ids_of(model.orders("notified", 2, 2)) ==
          std::vector<std::string>{notified_ids[2], notified_ids[3]});
    CHECK(ids_of(model.orders("notified", 2, 4)) == std::vector<std::string>{notified_ids[4]});
    // Walking all pages gives every order exactly once.
    std::vector<std::string> walked;
    for (std::int64_t off = 0; off < model.count(""); off += 4) {
        for (const auto& id : ids_of(model.orders("", 4, off))) walked.push_back(id);
    }
    CHECK(walked == all_ids);
}

TEST_CASE("read model: stock view is seeded, then follows StockReserved.remaining with as_of_seq") {
    Db db(":memory:");
    ReadModel model(db);
    model.seed_stock({{"phone", 100}, {"laptop", 50}});
    CHECK(model.stock_count() == 2);
    auto stock = model.stock(10, 0);
    REQUIRE(stock.size() == 2);
    CHECK(stock[0].item == "laptop");
    CHECK(stock[0].available == 50);
    CHECK(stock[0].as_of_seq == 0);
    CHECK(stock[1].item == "phone");
    CHECK(stock[1].available == 100);
    CHECK(stock[1].as_of_seq == 0);

    std::uint64_t seq = 10;
    const auto s = success_chain(seq, "o-1", "phone", 99);
    for (const Event* e : {&s.placed, &s.verified, &s.reserved}) model.apply(*e);
    stock = model.stock(10, 0);
    REQUIRE(stock.size() == 2);
    CHECK(stock[1].item == "phone");
    CHECK(stock[1].available == 99);
    CHECK(stock[1].as_of_seq == s.reserved.seq);
    CHECK(stock[0].available == 50);  // laptop untouched
    CHECK(stock[0].as_of_seq == 0);

    // Seeding again does not overwrite what events have set.
    model.seed_stock({{"phone", 100}, {"tablet", 7}});
    stock = model.stock(10, 0);
    REQUIRE(stock.size() == 3);
    CHECK(stock[1].item == "phone");
    CHECK(stock[1].available == 99);
    CHECK(stock[2].item == "tablet");
    CHECK(stock[2].available == 7);

    // A reservation of an item not seeded adds it.
    const auto h = success_chain(seq, "o-2", "headphones", 199);
    for (const Event* e : {&h.placed, &h.verified, &h.reserved}) model.apply(*e);
    CHECK(model.stock_count() == 4);
    stock = model.stock(10, 0);
    CHECK(stock[0].item == "headphones");
    CHECK(stock[0].available == 199);
    CHECK(stock[0].as_of_seq == h.reserved.seq);

    // Pagination.
    CHECK(model.stock(2, 0).size() == 2);
    const auto page = model.stock(2, 2);
    REQUIRE(page.size() == 2);
    CHECK(page[0].item == "phone");
    CHECK(page[1].item == "tablet");
    CHECK(model.stock(2, 4).empty());
}

// The stock view shows the level inventory last reported, from OutOfStock too; an unknown item
// gets no row.
TEST_CASE("read model: stock view follows OutOfStock.available with as_of_seq") {
    Db db(":memory:");
    ReadModel model(db);
    model.seed_stock({{"laptop", 50}});
    std::uint64_t seq = 20;
    // Inventory reports only 2 laptops left (e.g. its database started from other stock).
    const auto o = out_of_stock_chain(seq, "o-1", true, 2);
    for (const Event* e : {&o.placed, &o.verified, &o.shortage}) model.apply(*e);
    const auto stock = model.stock(10, 0);
    REQUIRE(stock.size() == 1);
    CHECK(stock[0].item == "laptop");
    CHECK(stock[0].available == 2);
    CHECK(stock[0].as_of_seq == o.shortage.seq);
}

TEST_CASE("read model: an Unknown item OutOfStock adds no stock row") {
    Db db(":memory:");
    ReadModel model(db);
    model.seed_stock({{"laptop", 50}});
    std::uint64_t seq = 0;
    Chain c{seq, "o-1"};
    const Event placed = c.placed("spaceship", 1, 100);
    const Event paid = c.after(placed, PaymentVerified{"spaceship", 1, 100, ""});
    const Event unknown = c.after(paid, OutOfStock{"spaceship", 1, 0, "Unknown item", ""});
    model.apply(placed);
    model.apply(paid);
    CHECK(model.apply(unknown));
    CHECK(model.stock_count() == 1);
    const auto v = view(model, "o-1");
    CHECK(v.status == "failed");
    CHECK(v.reason == "Unknown item");
}

TEST_CASE("read model: to_json of an order and a timeline entry") {
    Db db(":memory:");
    ReadModel model(db);
    std::uint64_t seq = 0;
    const auto s = success_chain(seq, "o-1");
    for (const Event* e : {&s.placed, &s.verified, &s.reserved, &s.shipped, &s.notified}) {
        model.apply(*e);
    }
    const auto j = op::order::to_json(view(model, "o-1"));
    CHECK(j["order_id"] == "o-1");
    CHECK(j["status"] == "notified");
    CHECK(j["amount"] == "1000.00");
    CHECK(j["amount_cents"] == 100000);
    CHECK(j["terminal"] == true);
    CHECK(j["tracking_id"] == "TRK-0123456789AB");
    CHECK_FALSE(j.contains("reason"));
    const auto tl = model.timeline("o-1");
    REQUIRE_FALSE(tl.empty());
    const auto first = op::order::to_json(tl[0]);
    CHECK(first["type"] == "OrderPlaced");
    CHECK_FALSE(first.contains("causation_id"));
    CHECK(op::order::to_json(tl[1])["causation_id"] == s.placed.id);
}

TEST_CASE("read model: stalled lists exactly the orders that are not terminal yet") {
    Db db(":memory:");
    ReadModel model(db);
    std::uint64_t seq = 0;
    // The chains carry no timestamps (""), so every unfinished order is older than this cutoff.
    const std::string cutoff = "9999";
    const auto s = success_chain(seq, "o-ok");
    for (const Event* e : {&s.placed, &s.verified, &s.reserved, &s.shipped}) {
        model.apply(*e);
        CHECK(model.count_stalled(cutoff) == 1);
    }
    model.apply(s.notified);
    CHECK(model.count_stalled(cutoff) == 0);

    for (const bool refund_first : {true, false}) {
        CAPTURE(refund_first);
        const std::string id = refund_first ? "o-refund-first" : "o-notice-first";
        const auto o = out_of_stock_chain(seq, id, refund_first);
        const std::vector<const Event*> events =
            refund_first ? std::vector<const Event*>{&o.placed, &o.verified, &o.shortage,
                                                     &o.refunded, &o.notified}
                         : std::vector<const Event*>{&o.placed, &o.verified, &o.shortage,
                                                     &o.notified, &o.refunded};
        for (std::size_t i = 0; i + 1 < events.size(); ++i) {
            model.apply(*events[i]);
            REQUIRE(model.stalled(cutoff, 10, 0).size() == 1);
            CHECK(model.stalled(cutoff, 10, 0)[0].order_id == id);
        }
        model.apply(*events.back());
        CHECK(model.count_stalled(cutoff) == 0);
    }

    const auto f = payment_failure_chain(seq, "o-funds");
    model.apply(f.placed);
    model.apply(f.failed);
    CHECK(model.count_stalled(cutoff) == 1);
    model.apply(f.notified);
    CHECK(model.count_stalled(cutoff) == 0);
}
