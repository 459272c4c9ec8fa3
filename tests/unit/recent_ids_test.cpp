// The id index's table of recent ids, against a std::map doing the same by the book.
#include "op/broker/recent_ids.hpp"

#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>

#include "op/events/ids.hpp"

using op::broker::RecentIds;
using op::events::id_hash64;

TEST_CASE("recent ids: finds what was inserted, with the first seq, and nothing else") {
    RecentIds ids;
    CHECK_FALSE(ids.find("a", id_hash64("a")));
    ids.insert("a", id_hash64("a"), 1);
    ids.insert("b", id_hash64("b"), 2);
    ids.insert("a", id_hash64("a"), 3);  // a second copy keeps the first seq
    CHECK(ids.size() == 2);
    CHECK(ids.find("a", id_hash64("a")) == 1);
    CHECK(ids.find("b", id_hash64("b")) == 2);
    CHECK_FALSE(ids.find("c", id_hash64("c")));
}

TEST_CASE("recent ids: a hash match alone is not a match") {
    RecentIds ids;
    ids.insert("first", 42, 7);
    CHECK(ids.find("first", 42) == 7);
    CHECK_FALSE(ids.find("other", 42));  // same hash, different bytes
    ids.insert("other", 42, 8);
    CHECK(ids.find("other", 42) == 8);
    CHECK(ids.find("first", 42) == 7);
    ids.erase("first", 42);
    CHECK_FALSE(ids.find("first", 42));
    CHECK(ids.find("other", 42) == 8);  // found past the tombstone
}

TEST_CASE("recent ids: agrees with a map through growth, erases and clears") {
    RecentIds ids;
    std::map<std::string, std::uint64_t> truth;
    std::mt19937_64 rng(7);
    std::uint64_t seq = 0;
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 20000; ++i) {
            const std::string id = op::events::random_id();
            ids.insert(id, id_hash64(id), ++seq);
            truth.emplace(id, seq);
            if (rng() % 10 == 0) {  // erase a recent one now and then
                ids.erase(id, id_hash64(id));
                truth.erase(id);
            }
        }
        REQUIRE(ids.size() == truth.size());
        for (const auto& [id, s] : truth) REQUIRE(ids.find(id, id_hash64(id)) == s);
        std::size_t seen = 0;
        ids.for_each([&](std::uint64_t hash, std::uint64_t s) {
            ++seen;
            CHECK(hash != 0);
            CHECK(s > 0);
        });
        CHECK(seen == truth.size());
        CHECK_FALSE(ids.find("never inserted", id_hash64("never inserted")));
        ids.clear();
        truth.clear();
        CHECK(ids.empty());
        CHECK_FALSE(ids.find("x", id_hash64("x")));
    }
}

TEST_CASE("recent ids: sized for the expected count from the start, so filling it never moves "
          "the table (a rehash held the broker's loop for tens of ms)") {
    constexpr std::size_t kExpected = 5000;
    RecentIds ids(kExpected);
    const std::size_t capacity = ids.capacity();
    CHECK(capacity * 5 >= kExpected * 8);  // at most 5/8 full, for short probe runs
    for (std::size_t i = 1; i <= kExpected; ++i) {
        const std::string id = op::events::random_id();
        ids.insert(id, id_hash64(id), i);
    }
    CHECK(ids.size() == kExpected);
    CHECK(ids.capacity() == capacity);

    RecentIds small;  // the default still grows when it must
    const std::size_t before = small.capacity();
    for (std::size_t i = 1; i <= kExpected; ++i) {
        const std::string id = op::events::random_id();
        small.insert(id, id_hash64(id), i);
    }
    CHECK(small.capacity() > before);
}
