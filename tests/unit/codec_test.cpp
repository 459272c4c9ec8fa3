// Unit tests of the event codec: encode/decode round trips for every event type, and decode's
// validation of untrusted bytes (each rejection names the field; nothing ever throws).
#include "op/events/codec.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "op/events/event.hpp"
#include "op/events/ids.hpp"
#include "op/events/money.hpp"

namespace {

using nlohmann::json;
using namespace op::events;

constexpr const char* kTs = "2026-11-24T22:10:56.123Z";

Event envelope(Payload data, std::uint64_t seq = 42) {
    Event e;
    e.data = std::move(data);
    e.order_id = "order-1";
    e.id = derived_id("cause-of-" + std::string(e.type_name()), e.type_name());
    e.causation_id = e.type() == EventType::OrderPlaced ? "" : "cause-id-123";
    e.seq = seq;
    e.ts = kTs;
    return e;
}

// One fully populated event of every type, in EventType order.
std::vector<Event> one_of_each() {
    return {
        envelope(OrderPlaced{"phone", 3, 123456, "alice"}),
        envelope(PaymentVerified{"laptop", 2, 500001, "bob"}),
        envelope(PaymentFailed{"Insufficient funds", 999999, "carol"}),
        envelope(StockReserved{"phone", 4, 96, "dave"}),
        envelope(OutOfStock{"laptop", 7, 5, "Item out of stock", "erin"}),
        envelope(PaymentRefunded{777, "Item out of stock"}),
        envelope(Shipped{"headphones", 1, "TRK-ABCDEF012345", "frank"}),
        envelope(CustomerNotified{"failed", "Insufficient funds", "grace"}),
        envelope(DeadLetter{"payment", "a refund for an order never charged", 41, "OutOfStock",
                            R"({"id":"x","type":"OutOfStock"})"}),
    };
}

void check_same(const Event& a, const Event& b) {
    CHECK(a.id == b.id);
    CHECK(a.order_id == b.order_id);
    CHECK(a.seq == b.seq);
    CHECK(a.ts == b.ts);
    CHECK(a.causation_id == b.causation_id);
    REQUIRE(a.type() == b.type());
    std::visit(
        [&](const auto& pa) {
            using T = std::decay_t<decltype(pa)>;
            const T& pb = std::get<T>(b.data);
            if constexpr (std::is_same_v<T, OrderPlaced> || std::is_same_v<T, PaymentVerified>) {
                CHECK(pa.item == pb.item);
                CHECK(pa.quantity == pb.quantity);
                CHECK(pa.amount_cents == pb.amount_cents);
                CHECK(pa.customer == pb.customer);
            } else if constexpr (std::is_same_v<T, PaymentFailed>) {
                CHECK(pa.reason == pb.reason);
                CHECK(pa.amount_cents == pb.amount_cents);
                CHECK(pa.customer == pb.customer);
            } else if constexpr (std::is_same_v<T, StockReserved>) {
                CHECK(pa.item == pb.item);
                CHECK(pa.quantity == pb.quantity);
                CHECK(pa.remaining == pb.remaining);
                CHECK(pa.customer == pb.customer);
            } else if constexpr (std::is_same_v<T, OutOfStock>) {
                CHECK(pa.item == pb.item);
                CHECK(pa.quantity == pb.quantity);
                CHECK(pa.available == pb.available);
                CHECK(pa.reason == pb.reason);
                CHECK(pa.customer == pb.customer);
            } else if constexpr (std::is_same_v<T, PaymentRefunded>) {
                CHECK(pa.amount_cents == pb.amount_cents);
                CHECK(pa.reason == pb.reason);
            } else if constexpr (std::is_same_v<T, Shipped>) {
                CHECK(pa.item == pb.item);
                CHECK(pa.quantity == pb.quantity);
                CHECK(pa.tracking_id == pb.tracking_id);
                CHECK(pa.customer == pb.customer);
            } else if constexpr (std::is_same_v<T, CustomerNotified>) {
                CHECK(pa.outcome == pb.outcome);
                CHECK(pa.reason == pb.reason);
                CHECK(pa.customer == pb.customer);
            } else if constexpr (std::is_same_v<T, DeadLetter>) {
                CHECK(pa.service == pb.service);
                CHECK(pa.reason == pb.reason);
                CHECK(pa.event_seq == pb.event_seq);
                CHECK(pa.event_type == pb.event_type);
                CHECK(json::parse(pa.event_json) == json::parse(pb.event_json));
            }
        },
        a.data);
}


json placed_json() { return to_json(envelope(OrderPlaced{"phone", 1, 100000, "alice"})); }
json verified_json() { return to_json(envelope(PaymentVerified{"phone", 1, 100000, "alice"})); }

// Decodes `j` (through its text, like the wire) and checks it is refused with an error that
// contains `needle`.
void expect_rejected(const json& j, const std::string& needle) {
    const std::string text = j.dump();
    CAPTURE(text);
    Decoded d;
    REQUIRE_NOTHROW(d = decode(text));
    CHECK_FALSE(d);
    CHECK_FALSE(d.event.has_value());
    CAPTURE(d.error);
    CHECK(d.error.find(needle) != std::string::npos);
}

void expect_rejected_text(const std::string& text, const std::string& needle) {
    CAPTURE(text);
    Decoded d;
    REQUIRE_NOTHROW(d = decode(text));
    CHECK_FALSE(d);
    CAPTURE(d.error);
    CHECK(d.error.find(needle) != std::string::npos);
}

}  // namespace

TEST_CASE("type_name and parse_type_name round trip for every event type") {
    const std::vector<std::string> expected = {
        "OrderPlaced", "PaymentVerified", "PaymentFailed",    "StockReserved", "OutOfStock",
        "PaymentRefunded", "Shipped",     "CustomerNotified", "DeadLetter"};
    REQUIRE(expected.size() == static_cast<std::size_t>(kEventTypeCount));
    for (int i = 0; i < kEventTypeCount; ++i) {
        const auto type = static_cast<EventType>(i);
        CHECK(type_name(type) == expected[static_cast<std::size_t>(i)]);
        const auto parsed = parse_type_name(type_name(type));
        REQUIRE(parsed.has_value());
        CHECK(*parsed == type);
    }
    CHECK_FALSE(parse_type_name("").has_value());
    CHECK_FALSE(parse_type_name("orderplaced").has_value());
    CHECK_FALSE(parse_type_name("OrderPlaced ").has_value());
    CHECK_FALSE(parse_type_name("Refund").has_value());
}

TEST_CASE("Event::type follows the payload alternative") {
    const auto events = one_of_each();
    for (std::size_t i = 0; i < events.size(); ++i) {
        CHECK(static_cast<std::size_t>(events[i].type()) == i);
        CHECK(events[i].type_name() == type_name(static_cast<EventType>(i)));
    }
    CHECK(events[0].as<OrderPlaced>() != nullptr);
    CHECK(events[0].as<Shipped>() == nullptr);
}

TEST_CASE("encode then decode gives back every field, for every event type") {
    for (const Event& original : one_of_each()) {
        CAPTURE(original.type_name());
        const std::string text = encode(original);
        CHECK(text.find('\n') == std::string::npos);
        const Decoded d = decode(text);
        REQUIRE_MESSAGE(d, d.error);
        CHECK(d.error.empty());
        check_same(original, *d.event);
        // And the re-encoding is byte-identical.
        CHECK(encode(*d.event) == text);
    }
}

TEST_CASE("round trip keeps defaults: no seq, no causation, no customer, no reason") {
    SUBCASE("OrderPlaced fresh from ingress") {
        Event e = envelope(OrderPlaced{"phone", 1, 1, ""}, 0);
        const json j = to_json(e);
        CHECK_FALSE(j.contains("seq"));
        CHECK_FALSE(j.contains("causation_id"));
        CHECK_FALSE(j["data"].contains("customer"));
        const Decoded d = decode(j.dump());
        REQUIRE_MESSAGE(d, d.error);
        check_same(e, *d.event);
    }
    SUBCASE("CustomerNotified success has no reason") {
        Event e = envelope(CustomerNotified{"success", "", ""});
        const json j = to_json(e);
        CHECK_FALSE(j["data"].contains("reason"));
        const Decoded d = decode(j.dump());
        REQUIRE_MESSAGE(d, d.error);
        check_same(e, *d.event);
    }
    SUBCASE("OrderPlaced may carry a causation_id, and keeps it") {
        Event e = envelope(OrderPlaced{"phone", 1, 1, ""});
        e.causation_id = "http-request-7";
        const Decoded d = decode(encode(e));
        REQUIRE_MESSAGE(d, d.error);
        CHECK(d.event->causation_id == "http-request-7");
    }
}

TEST_CASE("encode writes exactly the bytes of to_json(e).dump(), for every type and variant") {
    // encode() writes JSON directly (encode.cpp); the document path stays the reference.
    std::vector<Event> events = one_of_each();
    for (const auto& e : one_of_each()) {
        Event bare = e;
        bare.seq = 0;
        bare.causation_id.clear();
        events.push_back(bare);
    }
    events.push_back(envelope(OrderPlaced{"phone", 1, 1, ""}, 0));
    events.push_back(envelope(CustomerNotified{"success", "", ""}));
    events.push_back(envelope(StockReserved{"x", limits::kMaxQuantity, -5, ""}, UINT64_MAX));
    // Every escape nlohmann writes: quotes, backslashes, the named controls, \u00XX for the
    // rest below 0x20, DEL as is; and UTF-8 (two, three and four bytes) passed through.
    std::string controls;
    for (int c = 0; c < 0x20; ++c) controls.push_back(static_cast<char>(c));
    for (const std::string& text :
         {std::string("quote \" back \\ slash / solidus"), controls, std::string("del \x7f"),
          std::string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa6"), std::string()}) {
        events.push_back(envelope(OrderPlaced{text.empty() ? "i" : text, 2, 3, text}));
        events.push_back(envelope(OutOfStock{"item", 1, 0, text, text}));
        Event e = envelope(Shipped{"item", 1, text, ""});
        e.ts = text;
        e.order_id = "o" + text;
        events.push_back(e);
    }
    for (const auto& e : events) {
        CAPTURE(e.type_name());
        const std::string reference = to_json(e).dump();
        CHECK(encode(e) == reference);
        const Decoded d = decode(encode(e));
        if (d) check_same(e, *d.event);  // a few variants (empty ts) are invalid on purpose
    }
}

TEST_CASE("to_json writes the documented envelope") {
    const Event e = envelope(PaymentVerified{"phone", 2, 500001, "bob"});
    const json j = to_json(e);
    CHECK(j["id"] == e.id);
    CHECK(j["type"] == "PaymentVerified");
    CHECK(j["order_id"] == "order-1");
    CHECK(j["seq"] == 42);
    CHECK(j["ts"] == kTs);
    CHECK(j["causation_id"] == "cause-id-123");
    CHECK(j["v"] == 1);
    CHECK(j["data"]["item"] == "phone");
    CHECK(j["data"]["quantity"] == 2);
    CHECK(j["data"]["amount_cents"] == 500001);
    CHECK(j["data"]["amount_cents"].is_number_integer());
    CHECK(j["data"]["customer"] == "bob");
}

TEST_CASE("decode accepts a hand-written wire event") {
    const std::string text =
        R"({"id":"abc","type":"PaymentFailed","order_id":"o1","seq":7,"ts":"t",)"
        R"("causation_id":"c1","v":1,"data":{"reason":"Insufficient funds","amount_cents":500001}})";
    const Decoded d = decode(text);
    REQUIRE_MESSAGE(d, d.error);
    const auto* p = d.event->as<PaymentFailed>();
    REQUIRE(p != nullptr);
    CHECK(p->reason == "Insufficient funds");
    CHECK(p->amount_cents == 500001);
    CHECK(p->customer.empty());
    CHECK(d.event->seq == 7);
}

TEST_CASE("decode rejects text that is not a JSON object") {
    expect_rejected_text("", "JSON");
    expect_rejected_text("not json", "JSON");
    expect_rejected_text("{\"id\":", "JSON");
    expect_rejected_text(placed_json().dump() + "}", "JSON");
    expect_rejected_text("[]", "object");
    expect_rejected_text("[1,2]", "object");
    expect_rejected_text("42", "object");
    expect_rejected_text("\"OrderPlaced\"", "object");
    expect_rejected_text("null", "object");
    CHECK_FALSE(from_json(json::array()));
}

TEST_CASE("decode rejects a missing, mistyped or unknown type") {
    json j = placed_json();
    SUBCASE("missing") {
        j.erase("type");
        expect_rejected(j, "type");
        expect_rejected(j, "missing");
    }
    SUBCASE("null") {
        j["type"] = nullptr;
        expect_rejected(j, "type");
    }
    SUBCASE("not a string") {
        j["type"] = 3;
        expect_rejected(j, "type");
    }
    SUBCASE("unknown") {
        j["type"] = "OrderCancelled";
        expect_rejected(j, "type");
        expect_rejected(j, "OrderCancelled");
    }
}

TEST_CASE("decode rejects bad envelope fields, naming the field") {
    json j = verified_json();
    SUBCASE("missing id") {
        j.erase("id");
        expect_rejected(j, "id is missing");
    }
    SUBCASE("empty id") {
        j["id"] = "";
        expect_rejected(j, "id must not be empty");
    }
    SUBCASE("missing order_id") {
        j.erase("order_id");
        expect_rejected(j, "order_id is missing");
    }
    SUBCASE("empty order_id") {
        j["order_id"] = "";
        expect_rejected(j, "order_id");
    }
    SUBCASE("order_id not a string") {
        j["order_id"] = 12;
        expect_rejected(j, "order_id must be a string");
    }
    SUBCASE("seq negative") {
        j["seq"] = -1;
        expect_rejected(j, "seq");
    }
    SUBCASE("seq a string") {
        j["seq"] = "5";
        expect_rejected(j, "seq");
    }
    SUBCASE("seq a float") {
        j["seq"] = 5.5;
        expect_rejected(j, "seq");
    }
    SUBCASE("missing ts") {
        j.erase("ts");
        expect_rejected(j, "ts is missing");
    }
    SUBCASE("missing v") {
        j.erase("v");
        expect_rejected(j, "v is missing");
    }
    SUBCASE("v a string") {
        j["v"] = "1";
        expect_rejected(j, "v must be an integer");
    }
    SUBCASE("unsupported v 2") {
        j["v"] = 2;
        expect_rejected(j, "v 2");
        expect_rejected(j, "not supported");
    }
    SUBCASE("v 0") {
        j["v"] = 0;
        expect_rejected(j, "v");
    }
    SUBCASE("missing data") {
        j.erase("data");
        expect_rejected(j, "data is missing");
    }
    SUBCASE("data not an object") {
        j["data"] = json::array({1, 2});
        expect_rejected(j, "data must be an object");
    }
    SUBCASE("data a string") {
        j["data"] = "{}";
        expect_rejected(j, "data must be an object");
    }
}

TEST_CASE("seq is optional (absent before the broker appends) and accepts large values") {
    json j = verified_json();
    j.erase("seq");
    Decoded d = decode(j.dump());
    REQUIRE_MESSAGE(d, d.error);
    CHECK(d.event->seq == 0);
    j["seq"] = std::uint64_t{1} << 62;
    d = decode(j.dump());
    REQUIRE_MESSAGE(d, d.error);
    CHECK(d.event->seq == (std::uint64_t{1} << 62));
}

TEST_CASE("causation_id is required for derived types but optional for OrderPlaced") {
    SUBCASE("OrderPlaced without causation_id decodes") {
        json j = placed_json();
        j.erase("causation_id");
        const Decoded d = decode(j.dump());
        REQUIRE_MESSAGE(d, d.error);
        CHECK(d.event->causation_id.empty());
    }
    SUBCASE("OrderPlaced with empty causation_id decodes") {
        json j = placed_json();
        j["causation_id"] = "";
        CHECK(decode(j.dump()));
    }
    SUBCASE("every derived type without causation_id is refused") {
        for (const Event& e : one_of_each()) {
            if (e.type() == EventType::OrderPlaced) continue;
            CAPTURE(e.type_name());
            json j = to_json(e);
            j.erase("causation_id");
            expect_rejected(j, "causation_id is missing");
            j["causation_id"] = "";
            expect_rejected(j, "causation_id must not be empty");
        }
    }
}

TEST_CASE("decode rejects bad payload fields, naming data.<field>") {
    json j = verified_json();
    SUBCASE("missing data.item") {
        j["data"].erase("item");
        expect_rejected(j, "data.item is missing");
        expect_rejected(j, "PaymentVerified");
    }
    SUBCASE("empty data.item") {
        j["data"]["item"] = "";
        expect_rejected(j, "data.item must not be empty");
    }
    SUBCASE("data.item a number") {
        j["data"]["item"] = 7;
        expect_rejected(j, "data.item must be a string");
    }
    SUBCASE("quantity 0") {
        j["data"]["quantity"] = 0;
        expect_rejected(j, "data.quantity must be at least 1");
    }
    SUBCASE("quantity negative") {
        j["data"]["quantity"] = -3;
        expect_rejected(j, "data.quantity");
    }
    SUBCASE("quantity 1.5") {
        j["data"]["quantity"] = 1.5;
        expect_rejected(j, "data.quantity must be an integer");
    }
    SUBCASE("quantity \"2\"") {
        j["data"]["quantity"] = "2";
        expect_rejected(j, "data.quantity must be an integer");
    }
    SUBCASE("quantity above the maximum") {
        j["data"]["quantity"] = 1'000'001;
        expect_rejected(j, "data.quantity must be at most");
    }
    SUBCASE("missing quantity") {
        j["data"].erase("quantity");
        expect_rejected(j, "data.quantity is missing");
    }
    SUBCASE("amount_cents negative") {
        j["data"]["amount_cents"] = -100;
        expect_rejected(j, "data.amount_cents");
    }
    SUBCASE("amount_cents zero") {
        j["data"]["amount_cents"] = 0;
        expect_rejected(j, "data.amount_cents must be at least 1");
    }
    SUBCASE("amount_cents a float") {
        j["data"]["amount_cents"] = 100.5;
        expect_rejected(j, "data.amount_cents must be an integer");
    }
    SUBCASE("amount_cents a float with integral value") {
        j["data"]["amount_cents"] = 100.0;
        expect_rejected(j, "data.amount_cents must be an integer");
    }
    SUBCASE("amount_cents above kMaxCents") {
        j["data"]["amount_cents"] = kMaxCents + 1;
        expect_rejected(j, "data.amount_cents must be at most");
    }
    SUBCASE("amount_cents above int64") {
        j["data"]["amount_cents"] = std::numeric_limits<std::uint64_t>::max();
        expect_rejected(j, "data.amount_cents must be at most");
    }
    SUBCASE("amount_cents a string") {
        j["data"]["amount_cents"] = "100";
        expect_rejected(j, "data.amount_cents must be an integer");
    }
    SUBCASE("customer a number") {
        j["data"]["customer"] = 5;
        expect_rejected(j, "data.customer must be a string");
    }
}

TEST_CASE("amount_cents at kMaxCents is accepted") {
    json j = verified_json();
    j["data"]["amount_cents"] = kMaxCents;
    const Decoded d = decode(j.dump());
    REQUIRE_MESSAGE(d, d.error);
    CHECK(d.event->as<PaymentVerified>()->amount_cents == kMaxCents);
}

TEST_CASE("payload rules of the other types") {
    const auto all = one_of_each();
    SUBCASE("PaymentFailed needs a reason") {
        json j = to_json(all[2]);
        j["data"].erase("reason");
        expect_rejected(j, "data.reason is missing");
    }
    SUBCASE("StockReserved remaining may be 0 but not negative") {
        json j = to_json(all[3]);
        j["data"]["remaining"] = 0;
        CHECK(decode(j.dump()));
        j["data"]["remaining"] = -1;
        expect_rejected(j, "data.remaining");
    }
    SUBCASE("OutOfStock available may be 0 but not negative; reason required") {
        json j = to_json(all[4]);
        j["data"]["available"] = 0;
        CHECK(decode(j.dump()));
        j["data"]["available"] = -2;
        expect_rejected(j, "data.available");
        j = to_json(all[4]);
        j["data"]["reason"] = "";
        expect_rejected(j, "data.reason must not be empty");
    }
    SUBCASE("PaymentRefunded amount and reason") {
        json j = to_json(all[5]);
        j["data"]["amount_cents"] = 1.25;
        expect_rejected(j, "data.amount_cents");
        j = to_json(all[5]);
        j["data"].erase("reason");
        expect_rejected(j, "data.reason");
    }
    SUBCASE("Shipped needs a tracking_id") {
        json j = to_json(all[6]);
        j["data"].erase("tracking_id");
        expect_rejected(j, "data.tracking_id is missing");
    }
    SUBCASE("CustomerNotified outcome must be success or failed") {
        json j = to_json(all[7]);
        for (const char* bad : {"ok", "Success", "FAILED", "pending", "successful"}) {
            j["data"]["outcome"] = bad;
            expect_rejected(j, "data.outcome");
        }
        j["data"]["outcome"] = "";
        expect_rejected(j, "data.outcome");
        j["data"].erase("outcome");
        expect_rejected(j, "data.outcome is missing");
        j["data"]["outcome"] = "success";
        CHECK(decode(j.dump()));
        j["data"]["outcome"] = "failed";
        CHECK(decode(j.dump()));
    }
}

TEST_CASE("decode rejects overlong strings, and accepts them at the limit") {
    auto check_limit = [](json base, const std::string& path_key, bool in_data,
                          std::size_t limit, const std::string& needle) {
        CAPTURE(path_key);
        json& slot = in_data ? base["data"][path_key] : base[path_key];
        slot = std::string(limit, 'x');
        const Decoded ok = decode(base.dump());
        CHECK_MESSAGE(ok, ok.error);
        slot = std::string(limit + 1, 'x');
        expect_rejected(base, needle);
        expect_rejected(base, "longer than " + std::to_string(limit));
    };
    const auto all = one_of_each();
    check_limit(to_json(all[1]), "id", false, 128, "id");
    check_limit(to_json(all[1]), "order_id", false, 128, "order_id");
    check_limit(to_json(all[1]), "causation_id", false, 128, "causation_id");
    check_limit(to_json(all[1]), "ts", false, 64, "ts");
    check_limit(to_json(all[1]), "item", true, 128, "data.item");
    check_limit(to_json(all[1]), "customer", true, 256, "data.customer");
    check_limit(to_json(all[2]), "reason", true, 256, "data.reason");
    check_limit(to_json(all[6]), "tracking_id", true, 128, "data.tracking_id");

    json j = to_json(all[1]);
    j["type"] = std::string(1000, 'T');
    expect_rejected(j, "type");
    j = to_json(all[1]);
    j["data"]["item"] = std::string(100000, 'i');
    expect_rejected(j, "data.item");
}

TEST_CASE("unknown extra fields do not break decoding") {
    json j = verified_json();
    j["extra"] = {{"nested", true}};
    j["data"]["note"] = "hello";
    const Decoded d = decode(j.dump());
    REQUIRE_MESSAGE(d, d.error);
    CHECK(d.event->as<PaymentVerified>()->item == "phone");
}

TEST_CASE("decode never throws on garbage: random bytes, truncations, mutations, deep nesting") {
    std::mt19937_64 rng(20261124);
    auto survives = [](const std::string& text) {
        Decoded d;
        CHECK_NOTHROW(d = decode(text));
        // Either an event or a reason, never neither.
        CHECK((d.event.has_value() || !d.error.empty()));
        if (d) {
            // Whatever decodes re-encodes and decodes to the same event.
            std::string again;
            CHECK_NOTHROW(again = encode(*d.event));
            const Decoded d2 = decode(again);
            CHECK(d2);
            if (d2) check_same(*d.event, *d2.event);
        }
        return d.event.has_value();
    };

    SUBCASE("random byte strings") {
        std::uniform_int_distribution<int> len(0, 300);
        std::uniform_int_distribution<int> byte(0, 255);
        for (int i = 0; i < 400; ++i) {
            std::string s(static_cast<std::size_t>(len(rng)), '\0');
            for (char& c : s) c = static_cast<char>(byte(rng));
            CHECK_FALSE(survives(s));
        }
    }
    SUBCASE("random strings from JSON-ish characters") {
        const std::string alphabet = "{}[]\":,0123456789-.eE truefalsnl\\u";
        std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
        std::uniform_int_distribution<int> len(0, 200);
        for (int i = 0; i < 400; ++i) {
            std::string s(static_cast<std::size_t>(len(rng)), ' ');
            for (char& c : s) c = alphabet[pick(rng)];
            survives(s);
        }
    }
    SUBCASE("every truncation of a valid event is refused") {
        for (const Event& e : one_of_each()) {
            const std::string text = encode(e);
            for (std::size_t n = 0; n < text.size(); ++n) {
                CHECK_FALSE(survives(text.substr(0, n)));
            }
            CHECK(survives(text));
        }
    }
    SUBCASE("random byte mutations of valid events") {
        const auto all = one_of_each();
        std::uniform_int_distribution<int> byte(0, 255);
        for (int i = 0; i < 2000; ++i) {
            std::string text = encode(all[static_cast<std::size_t>(i) % all.size()]);
            std::uniform_int_distribution<std::size_t> pos(0, text.size() - 1);
            for (int k = 0; k < 1 + i % 3; ++k) text[pos(rng)] = static_cast<char>(byte(rng));
            survives(text);
        }
    }
    SUBCASE("deeply nested arrays and objects") {
        CHECK_FALSE(survives(std::string(100000, '[')));
        CHECK_FALSE(survives(std::string(10000, '[') + std::string(10000, ']')));
                std::string deep;
        for (int i = 0; i < 5000; ++i) deep += "{\"a\":";
        deep += "1";
        deep += std::string(5000, '}');
        json j = placed_json();
        j["data"] = "PLACEHOLDER";
        std::string text = j.dump();
        text.replace(text.find("\"PLACEHOLDER\""), 13, deep);
        CHECK_FALSE(survives(text));
        CHECK(survives(placed_json().dump()));
    }
    SUBCASE("invalid UTF-8 inside a string is refused") {
        std::string text = placed_json().dump();
        text.replace(text.find("phone"), 5, "ph\xff\xfe");
        CHECK_FALSE(survives(text));
    }
}

TEST_CASE("event versions: OrderPlaced v1 (no quantity) is read as v2 with quantity 1") {
    const auto v1 = R"({"id":"e1","type":"OrderPlaced","order_id":"o1","seq":7,
        "ts":"2026-01-02T03:04:05.000Z","v":1,"data":{"item":"phone","amount_cents":100000}})";
    auto d = decode(v1);
    REQUIRE_MESSAGE(d, d.error);
    const auto* placed = d.event->as<OrderPlaced>();
    REQUIRE(placed != nullptr);
    CHECK(placed->quantity == 1);
    CHECK(placed->amount_cents == 100000);

    // Written back at the current version, with the field the old one lacked.
    const json again = json::parse(encode(*d.event));
    CHECK(again["v"] == current_version(EventType::OrderPlaced));
    CHECK(again["v"] == 2);
    CHECK(again["data"]["quantity"] == 1);

    SUBCASE("v2 requires quantity") {
        json j = json::parse(v1);
        j["v"] = 2;
        auto r = decode(j.dump());
        CHECK_FALSE(r);
        CHECK(r.error.find("quantity is missing") != std::string::npos);
    }
    SUBCASE("a version newer than this build is refused, naming both") {
        json j = json::parse(v1);
        j["v"] = 3;
        auto r = decode(j.dump());
        CHECK_FALSE(r);
        CHECK(r.error.find("v 3 of OrderPlaced is not supported") != std::string::npos);
    }
    SUBCASE("types without an older version are at v1") {
        CHECK(current_version(EventType::PaymentVerified) == 1);
        CHECK(current_version(EventType::CustomerNotified) == 1);
    }
}

namespace {

// Whether decode()'s fast path, where it answers, answers exactly what nlohmann's does: the
// same event (compared by its canonical encoding, which carries every field) or the same error.
// Returns whether the fast path answered.
bool paths_agree(const std::string& text) {
    const auto plain = detail::decode_plain(text);
    if (!plain) return false;
    const auto full = detail::decode_with_nlohmann(text);
    CAPTURE(text);
    REQUIRE(plain->event.has_value() == full.event.has_value());
    if (full.event) {
        CHECK(encode(*plain->event) == encode(*full.event));
    } else {
        CHECK(plain->error == full.error);
    }
    return true;
}

}  // namespace

TEST_CASE("decode's fast path reads every event our encoder writes, as nlohmann does") {
    for (const auto& e : one_of_each()) {
        const auto text = encode(e);
        CAPTURE(text);
        // A DeadLetter quotes its event as a nested document: left to nlohmann.
        CHECK(paths_agree(text) == (e.type() != EventType::DeadLetter));
        CHECK(encode(*decode(text).event) == text);
    }
}

TEST_CASE("decode's fast path answers only what it reads exactly as nlohmann would") {
    const std::string placed = encode(one_of_each()[0]);
    struct Case {
        const char* what;
        std::string text;
        bool fast;  // whether the fast path should answer
    };
    auto with = [&](const std::string& from, const std::string& to) {
        std::string t = placed;
        const auto at = t.find(from);
        REQUIRE(at != std::string::npos);
        return t.replace(at, from.size(), to);
    };
    const std::vector<Case> cases = {
        {"whitespace between every token", " {\n\t\"type\" : \"OrderPlaced\" ,\r\"id\":\"a\","
                                           "\"order_id\":\"o\",\"ts\":\"t\",\"v\": 2,\"data\": {"
                                           "\"item\":\"phone\" ,\"quantity\":1,\"amount_cents\":5"
                                           " } } ",
         true},
        {"a repeated key (nlohmann keeps the last)", with("\"seq\":42", "\"seq\":1,\"seq\":42"),
         false},
        {"an escape in a string", with("\"alice\"", "\"al\\u0069ce\""), false},
        {"a byte over 0x7F", with("\"alice\"", "\"al\xc3\xa9\""), false},
        {"a control character in a string", with("\"alice\"", "\"al\tce\""), false},
        {"null for an optional field", with("\"customer\":\"alice\"", "\"customer\":null"),
         false},
        {"true for a number", with("\"seq\":42", "\"seq\":true"), false},
        {"a float", with("\"seq\":42", "\"seq\":42.0"), false},
        {"an exponent", with("\"seq\":42", "\"seq\":4e1"), false},
        {"a leading zero", with("\"seq\":42", "\"seq\":042"), false},
        {"minus zero (an integer, not unsigned)", with("\"seq\":42", "\"seq\":-0"), true},
        {"a negative seq", with("\"seq\":42", "\"seq\":-42"), true},
        {"18 digits", with("\"seq\":42", "\"seq\":999999999999999999"), true},
        {"19 digits", with("\"seq\":42", "\"seq\":9999999999999999999"), false},
        {"an array", with("\"seq\":42", "\"seq\":[42]"), false},
        {"an extra nested object", with("\"seq\":42", "\"seq\":42,\"x\":{\"y\":1}"), true},
        {"nesting two deep", with("\"amount_cents\":123456", "\"amount_cents\":{\"a\":{}}"),
         false},
        {"a string for a number", with("\"seq\":42", "\"seq\":\"42\""), true},
        {"an unknown type", with("\"OrderPlaced\"", "\"OrderShipped\""), true},
        {"data that is not an object", with("\"data\":{", "\"data\":\"x\",\"y\":{"), true},
        {"bytes after the object", placed + "x", false},
        {"a cut object", placed.substr(0, placed.size() - 1), false},
        {"a trailing comma", with("\"v\":2}", "\"v\":2,}"), false},
        {"an empty object", "{}", true},
        {"not an object", "[1]", false},
    };
    for (const auto& c : cases) {
        const std::string what = c.what;
        CAPTURE(what);
        CHECK(paths_agree(c.text) == c.fast);
    }
}

TEST_CASE("decode's two paths agree on every mutation of every event, byte by byte") {
    // Each byte of each encoding deleted, or replaced by a character that changes the
    // structure; then the cut prefixes. Where the fast path answers, nlohmann must agree.
    const std::string replacements = std::string("\"\\{}[],:-0123456789.eE \t\nnxt") + '\x7f' +
                                     '\x80' + '\x01';
    std::size_t fast = 0;
    std::size_t total = 0;
    for (const auto& e : one_of_each()) {
        const std::string text = encode(e);
        for (std::size_t i = 0; i < text.size(); ++i) {
            std::string removed = text;
            removed.erase(i, 1);
            fast += paths_agree(removed);
            fast += paths_agree(text.substr(0, i));
            total += 2;
            for (const char r : replacements) {
                std::string changed = text;
                changed[i] = r;
                fast += paths_agree(changed);
                ++total;
            }
        }
    }
    // Most mutations break the JSON (both refuse) or leave the plain shape (nlohmann alone
    // reads them); many still reach the fast path and are compared.
    CHECK(fast > total / 10);
    MESSAGE("fast path answered ", fast, " of ", total, " mutations");
}
