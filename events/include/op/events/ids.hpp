// Identifiers and timestamps for events. Derived ids are pure functions of their cause so a
// service that reprocesses an event after a crash republishes the same id and the broker
// drops the duplicate.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace op::events {

// 32 hex digits: a 128-bit hash of (causation id, event type name).
std::string derived_id(std::string_view causation_id, std::string_view type_name);

// 32 hex digits from a thread-local generator seeded by std::random_device.
std::string random_id();

// 32 hex digits, a pure function of `key` (used for Idempotency-Key).
std::string hashed_id(std::string_view key);

// ISO-8601 UTC with milliseconds: 2026-11-24T22:10:56.123Z
std::string format_timestamp(std::chrono::system_clock::time_point t);
std::string now_timestamp();

}  // namespace op::events
