#include "op/events/ids.hpp"

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>

#include <fmt/format.h>

namespace op::events {
namespace {

// Two independent 64-bit FNV-1a lanes, each finished with a splitmix64 mix: 128 bits with
// no crypto dependency. Collisions would merge two events, so 128 bits, not 64.
std::uint64_t mix(std::uint64_t x) noexcept {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

std::string hash128(std::string_view a, std::string_view b) {
    std::uint64_t h1 = 0xcbf29ce484222325ull;
    std::uint64_t h2 = 0x84222325cbf29ce4ull;
    auto feed = [&](std::string_view s) {
        for (unsigned char c : s) {
            h1 = (h1 ^ c) * 0x100000001b3ull;
            h2 = (h2 ^ c) * 0x00000100000001b3ull + 0x9e3779b97f4a7c15ull;
        }
    };
    // Length-prefixed, so no choice of bytes makes ("ab","c") and ("a","bc") collide.
    feed(std::to_string(a.size()));
    feed(":");
    feed(a);
    feed(b);
    return fmt::format("{:016x}{:016x}", mix(h1), mix(h2 ^ h1));
}

}  // namespace

std::uint64_t id_hash64(std::string_view id) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : id) h = (h ^ c) * 0x100000001b3ull;
    return mix(h);
}

std::string derived_id(std::string_view causation_id, std::string_view type_name) {
    return hash128(causation_id, type_name);
}

std::string hashed_id(std::string_view key) { return hash128("idempotency-key", key); }

std::string random_id() {
    thread_local std::mt19937_64 gen{[] {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd()};
        return std::mt19937_64(seq);
    }()};
    // Time first (microseconds since the epoch), then 64 random bits: ids made later sort
    // later, so the order read model's B-trees keyed by order id grow at their right edge,
    // where the pages are already in cache and dirty, instead of touching a random page for
    // every new order (the order service's SQLite commit was its largest cost).
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    return fmt::format("{:016x}{:016x}", static_cast<std::uint64_t>(us), gen());
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       us % 1'000'000);
}

std::optional<std::chrono::system_clock::time_point> parse_timestamp(std::string_view text) {
    std::tm tm{};
    int consumed = 0;
    const std::string s(text);
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
        consumed != 19) {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    std::int64_t micros = 0;
    std::size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        int digits = 0;
        for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
            if (digits < 6) micros = micros * 10 + (s[i] - '0');
            ++digits;
        }
        if (digits == 0) return std::nullopt;
        for (; digits < 6; ++digits) micros *= 10;
    }
    if (i + 1 != s.size() || s[i] != 'Z') return std::nullopt;
    const std::time_t secs = timegm(&tm);
    return std::chrono::system_clock::time_point(std::chrono::seconds(secs) +
                                                 std::chrono::microseconds(micros));
}

std::string now_timestamp() { return format_timestamp(std::chrono::system_clock::now()); }

}  // namespace op::events
