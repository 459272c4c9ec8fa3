// Identifiers and timestamps for events. Derived ids are pure functions of their cause so a
// service that reprocesses an event after a crash republishes the same id and the broker
// drops the duplicate.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace op::events {

// 32 hex digits: a 128-bit hash of (causation id, event type name).
std::string derived_id(std::string_view causation_id, std::string_view type_name);

// 32 hex digits: the time in microseconds since the epoch (16), so later ids sort later, then
// 64 bits from a thread-local generator seeded by std::random_device (16).
std::string random_id();

// A 64-bit hash of an id (FNV-1a, then a splitmix64 finaliser), the same on every build and
// machine: the broker keeps it on disk in its id index.
std::uint64_t id_hash64(std::string_view id) noexcept;

// 32 hex digits, a pure function of `key` (used for Idempotency-Key).
std::string hashed_id(std::string_view key);

// ISO-8601 UTC with microseconds, 2026-11-24T22:10:56.123456Z: hops in this pipeline take
// well under a millisecond, so milliseconds would show most of them as zero.
std::string format_timestamp(std::chrono::system_clock::time_point t);
// Reads what format_timestamp writes (any number of fraction digits, or none).
std::optional<std::chrono::system_clock::time_point> parse_timestamp(std::string_view text);
std::string now_timestamp();

}  // namespace op::events
