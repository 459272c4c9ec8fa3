// Unit tests of identifiers and timestamps: derived ids are pure functions of their cause,
// random ids are unique, timestamps are exact ISO-8601 UTC with milliseconds.
#include "op/events/ids.hpp"

#include <doctest/doctest.h>

#include <chrono>

#include <set>
#include <string>

#include "op/events/event.hpp"

namespace {

using namespace op::events;

bool is_hex32(const std::string& s) {
    if (s.size() != 32) return false;
    for (char c : s) {
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        if (!hex) return false;
    }
    return true;
}

}  // namespace

TEST_CASE("derived_id is deterministic and 32 lowercase hex characters") {
    const auto a = derived_id("cause-1", "PaymentVerified");
    const auto b = derived_id("cause-1", "PaymentVerified");
    CHECK(a == b);
    CHECK(is_hex32(a));
    CHECK(is_hex32(derived_id("", "")));
    CHECK(is_hex32(derived_id(std::string(10000, 'x'), "OrderPlaced")));
}

TEST_CASE("derived_id differs by causation id and by type") {
    const auto base = derived_id("cause-1", "PaymentVerified");
    CHECK(derived_id("cause-2", "PaymentVerified") != base);
    CHECK(derived_id("cause-1", "PaymentFailed") != base);
    CHECK(derived_id("Cause-1", "PaymentVerified") != base);
    // Every type name gives its own id for one cause.
    std::set<std::string> ids;
    for (int i = 0; i < kEventTypeCount; ++i) {
        ids.insert(derived_id("cause-1", type_name(static_cast<EventType>(i))));
    }
    CHECK(ids.size() == static_cast<std::size_t>(kEventTypeCount));
}

TEST_CASE("derived_id separates its two inputs: (ab, c) and (a, bc) do not collide") {
    CHECK(derived_id("ab", "c") != derived_id("a", "bc"));
    CHECK(derived_id("", "abc") != derived_id("abc", ""));
    CHECK(derived_id("order-1", "OrderPlaced") != derived_id("order-1Order", "Placed"));
}

TEST_CASE("derived_id has no collisions over many causes") {
    std::set<std::string> ids;
    for (int i = 0; i < 20000; ++i) ids.insert(derived_id("order-" + std::to_string(i), "OrderPlaced"));
    CHECK(ids.size() == 20000);
}

TEST_CASE("random_id is 32 hex characters and unique over 10k draws") {
    std::set<std::string> ids;
    for (int i = 0; i < 10000; ++i) {
        const auto id = random_id();
        if (!is_hex32(id)) {
            FAIL_CHECK("not 32 hex: " << id);
        }
        ids.insert(id);
    }
    CHECK(ids.size() == 10000);
}

TEST_CASE("random_id: an id made later sorts later (time first), so B-trees keyed by it grow at one end") {
    const auto first = random_id();
    const auto made = std::chrono::system_clock::now();
    while (std::chrono::system_clock::now() - made < std::chrono::microseconds(2)) {
    }
    const auto later = random_id();
    CHECK(first < later);
    CHECK(first.substr(16) != later.substr(16));
}

TEST_CASE("hashed_id is deterministic, 32 hex, and differs per key") {
    CHECK(hashed_id("key-1") == hashed_id("key-1"));
    CHECK(is_hex32(hashed_id("key-1")));
    CHECK(hashed_id("key-1") != hashed_id("key-2"));
    CHECK(hashed_id("") != hashed_id(" "));
    // Not the same as a derived event id of the same text.
    CHECK(hashed_id("key-1") != derived_id("key-1", "OrderPlaced"));
}

// ids.hpp (since "hop durations in order timelines"): ISO-8601 UTC with microseconds.
TEST_CASE("format_timestamp gives exact ISO-8601 UTC with microseconds") {
    using namespace std::chrono;
    SUBCASE("a known instant") {
        const auto t = sys_days{year{2026} / 11 / 24} + hours{22} + minutes{10} + seconds{56} +
                       microseconds{123456};
        CHECK(format_timestamp(t) == "2026-11-24T22:10:56.123456Z");
    }
    SUBCASE("a whole millisecond keeps six fraction digits") {
        const auto t = sys_days{year{2026} / 11 / 24} + hours{22} + minutes{10} + seconds{56} +
                       milliseconds{123};
        CHECK(format_timestamp(t) == "2026-11-24T22:10:56.123000Z");
    }
    SUBCASE("the epoch") {
        CHECK(format_timestamp(system_clock::time_point{}) == "1970-01-01T00:00:00.000000Z");
    }
    SUBCASE("sub-microsecond parts are truncated, fields zero-padded") {
        const auto t = sys_days{year{2024} / 2 / 29} + hours{1} + minutes{2} + seconds{3} +
                       nanoseconds{4999};
        CHECK(format_timestamp(time_point_cast<system_clock::duration>(t)) ==
              "2024-02-29T01:02:03.000004Z");
    }
    SUBCASE("last microsecond of a year") {
        const auto t = sys_days{year{2025} / 1 / 1} - microseconds{1};
        CHECK(format_timestamp(t) == "2024-12-31T23:59:59.999999Z");
    }
    SUBCASE("now_timestamp has the same shape") {
        const auto now = now_timestamp();
        REQUIRE(now.size() == 27);
        CHECK(now[4] == '-');
        CHECK(now[10] == 'T');
        CHECK(now[19] == '.');
        CHECK(now.back() == 'Z');
    }
}

TEST_CASE("parse_timestamp reads what format_timestamp writes") {
    using namespace std::chrono;
    const system_clock::time_point t = sys_days{year{2026} / 11 / 24} + hours{22} + minutes{10} +
                                       seconds{56} + microseconds{123456};
    const auto parsed = parse_timestamp(format_timestamp(t));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == t);

    const auto now = system_clock::now();
    const auto back = parse_timestamp(format_timestamp(now));
    REQUIRE(back.has_value());
    CHECK(duration_cast<microseconds>(now - *back).count() == 0);

    SUBCASE("fewer fraction digits, or none") {
        const auto ms = parse_timestamp("2026-11-24T22:10:56.123Z");
        REQUIRE(ms.has_value());
        CHECK(format_timestamp(*ms) == "2026-11-24T22:10:56.123000Z");
        const auto whole = parse_timestamp("2026-11-24T22:10:56Z");
        REQUIRE(whole.has_value());
        CHECK(format_timestamp(*whole) == "2026-11-24T22:10:56.000000Z");
        const auto nanos = parse_timestamp("2026-11-24T22:10:56.123456789Z");
        REQUIRE(nanos.has_value());
        CHECK(format_timestamp(*nanos) == "2026-11-24T22:10:56.123456Z");
    }
    SUBCASE("garbage is refused") {
        for (const char* bad : {"", "now", "2026-11-24", "2026-11-24T22:10:56",
                                "2026-11-24T22:10:56.Z", "2026-11-24T22:10:56.123",
                                "2026-11-24T22:10:56.123Zx", "2026-11-24 22:10:56Z",
                                " 2026-11-24T22:10:56Z"}) {
            CAPTURE(bad);
            CHECK_FALSE(parse_timestamp(bad).has_value());
        }
    }
}

TEST_CASE("derive sets order_id, causation_id = cause.id and id = derived_id(cause.id, type)") {
    Event cause;
    cause.order_id = "order-42";
    cause.id = derived_id("order-42", "OrderPlaced");
    cause.seq = 17;
    cause.ts = "2026-11-24T22:10:56.123Z";
    cause.data = OrderPlaced{"phone", 2, 2000, "alice"};

    const Event out = derive(cause, PaymentVerified{"phone", 2, 2000, "alice"},
                             "2026-11-24T22:10:57.000Z");
    CHECK(out.order_id == "order-42");
    CHECK(out.causation_id == cause.id);
    CHECK(out.id == derived_id(cause.id, "PaymentVerified"));
    CHECK(out.type() == EventType::PaymentVerified);
    CHECK(out.ts == "2026-11-24T22:10:57.000Z");
    CHECK(out.seq == 0);  // the broker assigns it
    REQUIRE(out.as<PaymentVerified>() != nullptr);
    CHECK(out.as<PaymentVerified>()->amount_cents == 2000);

    // Deriving again from the same cause yields the same id; another type, another id.
    CHECK(derive(cause, PaymentVerified{}, "later").id == out.id);
    CHECK(derive(cause, PaymentFailed{}, "later").id != out.id);
    // A different cause yields a different id.
    Event other = cause;
    other.id = derived_id("order-43", "OrderPlaced");
    CHECK(derive(other, PaymentVerified{}, "t").id != out.id);
}
