// Subscribe from a checkpoint: replay from the log up to the head, then follow the live feed,
// delivering every event of the chosen topics exactly once, in seq order, with no gap.
//
// The live socket follows one channel, the broker's feed of just the chosen topics (protocol.hpp),
// so a service is not woken for events it would discard. Each frame names the seq of the
// channel's previous event: one the subscriber has not reached means a frame was lost, and so
// does a heartbeat naming a last seq it has not reached. A gap is repaired from the replay
// endpoint before anything later is delivered; a heartbeat that shows nothing missing moves
// next_seq past the other topics' events up to the head. Reconnects are ZeroMQ's; an
// unanswered replay request is re-sent. Not thread-safe: one thread polls.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "op/bus/endpoints.hpp"
#include "op/events/event.hpp"

namespace op::bus {

struct SubscriberOptions {
    Endpoints endpoints;
    std::vector<events::EventType> topics;  // empty: every topic
    std::uint64_t from_seq = 1;             // first seq wanted (checkpoint + 1)
    bool from_head = false;                 // ignore from_seq: only events after the head
    std::size_t replay_batch = 1000;
    std::chrono::milliseconds replay_timeout{1000};
};

// One delivered event with its bytes as appended (for tools that print the wire form).
struct Delivery {
    events::Event event;
    std::string json;
};

class Subscriber {
public:
    explicit Subscriber(SubscriberOptions options);
    ~Subscriber();
    Subscriber(const Subscriber&) = delete;
    Subscriber& operator=(const Subscriber&) = delete;

    // Waits up to `timeout` for events and returns the next ones in seq order: at most
    // max_events, plus the rest of a live batch frame, which is delivered whole (256 KiB at
    // most). Returns early as soon as some are ready. Empty on timeout.
    // With a `wake_fd`, it also returns (maybe empty) as soon as that file descriptor is
    // readable, so a caller can wait for events and for something else at once; the caller
    // reads the fd to clear it.
    std::vector<Delivery> poll(std::chrono::milliseconds timeout, std::size_t max_events = 1000,
                               int wake_fd = -1);

    std::uint64_t next_seq() const;   // the seq the subscriber will deliver next
    std::uint64_t head_seq() const;   // the broker's head as last heard
    bool caught_up() const;           // replay has reached the head at least once
    std::uint64_t undecodable() const;  // events skipped because they failed to decode
    // Why the broker last refused a replay request (e.g. from a seq retention deleted); ""
    // once a replay is answered. The subscriber keeps asking; a tool may give up on it.
    const std::string& refusal() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace op::bus
