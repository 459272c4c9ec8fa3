// The skeleton of an order's path: the same processes and the same durable appends as the
// system, with none of its work. A relay process (bench --skeleton-relay) stands for the
// broker: it appends each message it receives and fdatasyncs it (SyncedAppender, as the
// broker's log writes), then sends it on. Hop processes (bench --skeleton-hop) stand for the
// services: each sends back at once whatever is delivered to it. bench itself stands for the
// order service: it sends the first event and waits for the last one to be delivered to it.
//
// With 3 appends a message goes bench -> relay -> hop1 -> relay -> hop2 -> relay -> bench, as
// OrderPlaced, PaymentVerified and StockReserved go to a decision (4 processes); with 5, as the
// whole chain does (6 processes). No HTTP, no JSON, no CurveZMQ, no SQLite, no acks, no read
// model: only ZeroMQ between processes and fdatasync. It is not the floor's bound, which is
// 3 (or 5) times one fdatasync plus one round trip between two processes, each measured on
// its own; the skeleton shows what chaining them through this many processes costs on this
// machine before any of the system's work, which is the part no change to the system removes.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "latency.hpp"

namespace op::bench {

// Starts a relay and appends - 1 hops (this program again), sends one message at a time
// through them for `budget`, and gives the time from each send to its return. `dir` holds the
// relay's file (and the helpers' logs, removed when they exit cleanly).
Percentiles measure_skeleton(const std::filesystem::path& dir, int appends,
                             std::chrono::milliseconds budget);

// bench --skeleton-relay ENDPOINT APPENDS FILE: binds a ROUTER at `endpoint`; every message
// it receives is appended to `file` and synced, then sent on to the next hop (or back to bench
// after `appends` of them). Until SIGTERM or until the bench that started it is gone.
int run_skeleton_relay(const std::string& endpoint, int appends, const std::filesystem::path& file);

// bench --skeleton-hop ENDPOINT NAME: connects a DEALER named `name` to the relay and sends
// back every message delivered to it, until SIGTERM or until its parent is gone.
int run_skeleton_hop(const std::string& endpoint, const std::string& name);

}  // namespace op::bench
