// Unit tests of the inventory handler: initial stock parsing and seeding, reservation,
// OutOfStock (short or unknown item), never reserving twice, and stock conservation.
#include "inventory_service.hpp"

#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "op/events/event.hpp"
#include "op/events/ids.hpp"

namespace {

using namespace op::events;
using op::inventory::InventoryService;
using op::inventory::parse_initial_stock;
using op::inventory::StockLevel;
using op::store::Db;

constexpr const char* kNow = "2026-11-24T22:10:58.000Z";

// The PaymentVerified payment would publish for a fresh order, as in the real flow.
Event verified(const std::string& order_id, const std::string& item, std::int64_t quantity,
               const std::string& customer = "alice", std::uint64_t seq = 2) {
    Event placed;
    placed.order_id = order_id;
    placed.id = derived_id(order_id, "OrderPlaced");
    placed.seq = seq - 1;
    placed.ts = "2026-11-24T22:10:56.123Z";
    placed.data = OrderPlaced{item, quantity, 1000, customer};
    Event e = derive(placed, PaymentVerified{item, quantity, 1000, customer},
                     "2026-11-24T22:10:57.000Z");
    e.seq = seq;
    return e;
}

std::map<std::string, std::int64_t> initial() { return {{"phone", 10}, {"laptop", 3}}; }

void check_level(InventoryService& s, const std::string& item, std::int64_t available,
                 std::int64_t reserved) {
    CAPTURE(item);
    const auto level = s.stock(item);
    REQUIRE(level.has_value());
    CHECK(level->available == available);
    CHECK(level->reserved == reserved);
}

}  // namespace

TEST_CASE("parse_initial_stock accepts an object of item names to non-negative counts") {
    const auto parsed = parse_initial_stock(
        R"({"phone": 100, "laptop": 50, "headphones": 200, "tablet": 0})");
    CHECK(parsed.error.empty());
    REQUIRE(parsed.items.size() == 4);
    CHECK(parsed.items.at("phone") == 100);
    CHECK(parsed.items.at("laptop") == 50);
    CHECK(parsed.items.at("headphones") == 200);
    CHECK(parsed.items.at("tablet") == 0);

    const auto empty = parse_initial_stock("{}");
    CHECK(empty.error.empty());
    CHECK(empty.items.empty());
}

TEST_CASE("parse_initial_stock refuses bad input with a reason and no items") {
    auto refused = [](const std::string& text, const std::string& needle) {
        CAPTURE(text);
        const auto parsed = parse_initial_stock(text);
        CHECK(parsed.items.empty());
        CAPTURE(parsed.error);
        CHECK(parsed.error.find(needle) != std::string::npos);
    };
    refused("", "not valid JSON");
    refused("{\"phone\": 1", "not valid JSON");
    refused("[1, 2]", "must be a JSON object");
    refused("42", "must be a JSON object");
    refused(R"({"phone": -1})", "phone");
    refused(R"({"phone": 1.5})", "phone");
    refused(R"({"phone": "10"})", "phone");
    refused(R"({"phone": null})", "phone");
    refused(R"({"": 3})", "non-negative integer");
    refused(R"({"phone": 10, "laptop": -2})", "laptop");  // a later bad item clears all
    refused(R"({"phone": 18446744073709551615})", "phone");
}

TEST_CASE("seed fills an empty stock table once and a second seed changes nothing") {
    Db db(":memory:");
    InventoryService service(db);
    CHECK(service.all_stock().empty());
    CHECK_FALSE(service.stock("phone").has_value());

    CHECK(service.seed(initial()));
    check_level(service, "phone", 10, 0);
    check_level(service, "laptop", 3, 0);
    CHECK(service.all_stock().size() == 2);

    CHECK_FALSE(service.seed({{"phone", 999}, {"tablet", 5}}));
    check_level(service, "phone", 10, 0);
    CHECK_FALSE(service.stock("tablet").has_value());
    CHECK(service.all_stock().size() == 2);

    // A restarted service over the same database keeps the stock too.
    InventoryService restarted(db);
    CHECK_FALSE(restarted.seed({{"phone", 1}}));
    check_level(restarted, "phone", 10, 0);
}

TEST_CASE("PaymentVerified reserves stock and reports what remains") {
    Db db(":memory:");
    InventoryService service(db);
    REQUIRE(service.seed(initial()));

    const Event cause = verified("o-1", "phone", 4, "alice");
    const auto out = service.handle(cause, kNow);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].type() == EventType::StockReserved);
    const auto* r = out[0].as<StockReserved>();
    CHECK(r->item == "phone");
    CHECK(r->quantity == 4);
    CHECK(r->remaining == 6);
    CHECK(r->customer == "alice");
    CHECK(out[0].order_id == "o-1");
    CHECK(out[0].causation_id == cause.id);
    CHECK(out[0].id == derived_id(cause.id, "StockReserved"));
    CHECK(out[0].ts == kNow);
    check_level(service, "phone", 6, 4);
    check_level(service, "laptop", 3, 0);

    const auto next = service.handle(verified("o-2", "phone", 1), kNow);
    REQUIRE(next.size() == 1);
    CHECK(next[0].as<StockReserved>()->remaining == 5);
    check_level(service, "phone", 5, 5);
}

TEST_CASE("quantity above available -> OutOfStock 'Item out of stock', stock unchanged") {
    Db db(":memory:");
    InventoryService service(db);
    REQUIRE(service.seed(initial()));

    const Event cause = verified("o-1", "laptop", 4, "bob");
    const auto out = service.handle(cause, kNow);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].type() == EventType::OutOfStock);
    const auto* s = out[0].as<OutOfStock>();
    CHECK(s->reason == "Item out of stock");
    CHECK(s->reason == op::inventory::kOutOfStock);
    CHECK(s->item == "laptop");
    CHECK(s->quantity == 4);
    CHECK(s->available == 3);
    CHECK(s->customer == "bob");
    CHECK(out[0].causation_id == cause.id);
    CHECK(out[0].id == derived_id(cause.id, "OutOfStock"));
    check_level(service, "laptop", 3, 0);
}

TEST_CASE("ordering exactly what is available succeeds, and the next order fails") {
    Db db(":memory:");
    InventoryService service(db);
    REQUIRE(service.seed(initial()));

    const auto all = service.handle(verified("o-1", "laptop", 3), kNow);
    REQUIRE(all.size() == 1);
    REQUIRE(all[0].type() == EventType::StockReserved);
    CHECK(all[0].as<StockReserved>()->remaining == 0);
    check_level(service, "laptop", 0, 3);

    const auto none = service.handle(verified("o-2", "laptop", 1), kNow);
    REQUIRE(none.size() == 1);
    REQUIRE(none[0].type() == EventType::OutOfStock);
    CHECK(none[0].as<OutOfStock>()->available == 0);
    CHECK(none[0].as<OutOfStock>()->reason == "Item out of stock");
    check_level(service, "laptop", 0, 3);
}

TEST_CASE("an item with zero stock is out of stock, not unknown") {
    Db db(":memory:");
    InventoryService service(db);
    REQUIRE(service.seed({{"tablet", 0}}));
    const auto out = service.handle(verified("o-1", "tablet", 1), kNow);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].type() == EventType::OutOfStock);
    CHECK(out[0].as<OutOfStock>()->reason == "Item out of stock");
}

TEST_CASE("an unknown item -> OutOfStock 'Unknown item', no stock row created") {
    Db db(":memory:");
    InventoryService service(db);
    REQUIRE(service.seed(initial()));
    const auto out = service.handle(verified("o-1", "spaceship", 1, "carol"), kNow);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].type() == EventType::OutOfStock);
    const auto* s = out[0].as<OutOfStock>();
    CHECK(s->reason == "Unknown item");
    CHECK(s->reason == op::inventory::kUnknownItem);
    CHECK(s->item == "spaceship");
    CHECK(s->available == 0);
    CHECK(s->customer == "carol");
    CHECK_FALSE(service.stock("spaceship").has_value());
    CHECK(service.all_stock().size() == 2);
    // Case matters: "Phone" is not "phone".
    const auto upper = service.handle(verified("o-2", "Phone", 1), kNow);
    REQUIRE(upper.size() == 1);
    CHECK(upper[0].as<OutOfStock>()->reason == "Unknown item");
}

TEST_CASE("a second PaymentVerified for the same order produces nothing, never reserves twice") {
    Db db(":memory:");
    InventoryService service(db);
    REQUIRE(service.seed(initial()));

    SUBCASE("after a reservation") {
        const Event cause = verified("o-1", "phone", 2);
        REQUIRE(service.handle(cause, kNow).size() == 1);
        check_level(service, "phone", 8, 2);
        CHECK(service.handle(cause, kNow).empty());
        Event redelivered = cause;
        redelivered.seq = 99;
        CHECK(service.handle(redelivered, kNow).empty());
        CHECK(service.handle(verified("o-1", "phone", 5), kNow).empty());
        check_level(service, "phone", 8, 2);
    }
    SUBCASE("after a refusal: a later retry with stock available is still refused silently") {
        REQUIRE(service.handle(verified("o-1", "laptop", 9), kNow).size() == 1);
        CHECK(service.handle(verified("o-1", "laptop", 1), kNow).empty());
        check_level(service, "laptop", 3, 0);
    }
    SUBCASE("after an unknown item") {
        REQUIRE(service.handle(verified("o-1", "nothing", 1), kNow).size() == 1);
        CHECK(service.handle(verified("o-1", "nothing", 1), kNow).empty());
    }
    SUBCASE("across a restart over the same database") {
        REQUIRE(service.handle(verified("o-1", "phone", 2), kNow).size() == 1);
        InventoryService restarted(db);
        CHECK(restarted.handle(verified("o-1", "phone", 2), kNow).empty());
        check_level(restarted, "phone", 8, 2);
    }
}

TEST_CASE("other event types produce nothing and leave stock alone") {
    Db db(":memory:");
    InventoryService service(db);
    REQUIRE(service.seed(initial()));
    const Event cause = verified("o-1", "phone", 1);
    for (const Payload& p : std::vector<Payload>{
             OrderPlaced{"phone", 1, 100, ""}, PaymentFailed{"Insufficient funds", 100, ""},
             StockReserved{"phone", 1, 9, ""}, OutOfStock{"phone", 1, 0, "Item out of stock", ""},
             PaymentRefunded{100, "x"}, Shipped{"phone", 1, "TRK", ""},
             CustomerNotified{"success", "", ""}}) {
        const Event e = derive(cause, p, kNow);
        CAPTURE(e.type_name());
        CHECK(service.handle(e, kNow).empty());
    }
    check_level(service, "phone", 10, 0);
    const auto topics = InventoryService::topics();
    REQUIRE(topics.size() == 1);
    CHECK(topics[0] == EventType::PaymentVerified);
}

TEST_CASE("conservation: available + reserved == initial over 1000 random orders, never negative") {
    Db db(":memory:");
    InventoryService service(db);
    const std::map<std::string, std::int64_t> start = {
        {"phone", 300}, {"laptop", 50}, {"headphones", 200}, {"tablet", 0}};
    REQUIRE(service.seed(start));

    std::mt19937 rng(42);
    const std::vector<std::string> items = {"phone", "laptop", "headphones", "tablet", "unknown"};
    std::uniform_int_distribution<std::size_t> pick_item(0, items.size() - 1);
    std::uniform_int_distribution<int> pick_qty(1, 6);
    std::uniform_int_distribution<int> coin(0, 9);

    std::map<std::string, std::int64_t> reserved_by_events;
    std::vector<Event> delivered;
    int reserved_count = 0, refused_count = 0;
    for (int i = 0; i < 1000; ++i) {
        Event cause;
        if (!delivered.empty() && coin(rng) == 0) {
            // Redelivery of an earlier event: must produce nothing.
            std::uniform_int_distribution<std::size_t> pick(0, delivered.size() - 1);
            cause = delivered[pick(rng)];
            CHECK(service.handle(cause, kNow).empty());
        } else {
            const auto& item = items[pick_item(rng)];
            const std::int64_t qty = pick_qty(rng);
            const auto before = service.stock(item);
            cause = verified("order-" + std::to_string(i), item, qty, "c",
                             static_cast<std::uint64_t>(2 * i + 2));
            const auto out = service.handle(cause, kNow);
            REQUIRE(out.size() == 1);
            if (out[0].type() == EventType::StockReserved) {
                ++reserved_count;
                const auto* r = out[0].as<StockReserved>();
                REQUIRE(before.has_value());
                CHECK(before->available >= qty);
                CHECK(r->remaining == before->available - qty);
                reserved_by_events[item] += qty;
            } else {
                ++refused_count;
                REQUIRE(out[0].type() == EventType::OutOfStock);
                const auto* s = out[0].as<OutOfStock>();
                if (before) {
                    CHECK(s->reason == "Item out of stock");
                    CHECK(s->available == before->available);
                    CHECK(before->available < qty);
                } else {
                    CHECK(s->reason == "Unknown item");
                }
            }
            delivered.push_back(cause);
        }
        for (const auto& [item, level] : service.all_stock()) {
            if (level.available < 0 || level.reserved < 0) {
                FAIL_CHECK("negative stock for " << item << " after order " << i);
            }
        }
    }

    const auto final_stock = service.all_stock();
    REQUIRE(final_stock.size() == start.size());
    for (const auto& [item, count] : start) {
        CAPTURE(item);
        const StockLevel& level = final_stock.at(item);
        CHECK(level.available + level.reserved == count);
        CHECK(level.reserved == reserved_by_events[item]);
        CHECK(level.available >= 0);
    }
    // The random walk exercised both outcomes and sold some items out.
    CHECK(reserved_count > 0);
    CHECK(refused_count > 0);
    CHECK(final_stock.at("laptop").available < 6);
}
