// Publish-with-ack: the client side of the broker's publish endpoint.
//
// An event counts as published only when the broker acknowledges it, which it does after the
// event is fdatasynced. An unacknowledged event is re-sent once retry_interval has passed and
// either the broker has answered nothing for that long (down, restarting) or it has answered an
// event sent after this one (so this one was lost, e.g. across a broker restart); an event
// merely queued behind a busy broker is not re-sent, so a slow broker is not flooded with
// copies. The broker drops re-sends by event id and answers DUP with the original seq, so a
// retry never appends twice.
//
// Two ways to run it. By default it is thread-safe: any thread may publish, and one I/O thread
// inside owns the socket and pipelines every pending event. Driven by its caller
// (PublisherOptions::driven_by_caller), it has no thread: the thread that made it owns the
// socket, publishes from it alone, waits on wait_fd() with its other sources and calls drive().
// A service's handler loop runs it so: each publish and each ack is then one thread wake-up
// fewer on the way to the broker and back.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "op/bus/endpoints.hpp"
#include "op/events/event.hpp"

namespace zmq {
class context_t;
}

namespace op::bus {

enum class PublishStatus {
    Appended,   // newly appended at seq
    Duplicate,  // already in the log at seq (a retry, or a reprocessed cause)
    Rejected,   // the broker refused it (error says why); retrying will not help
    TimedOut,   // no ack before the caller's deadline; it may still be appended later
    Stopped,    // the publisher shut down first
    Unavailable,  // the broker cannot store events now (disk full, I/O error); not appended
};

// What a publish does when the broker answers that it cannot store events right now.
enum class WhenUnavailable {
    Retry,   // keep re-sending until the deadline (a service: its event must land)
    GiveUp,  // resolve at once with Unavailable (the ingress: tell the client now)
};

struct PublishResult {
    PublishStatus status = PublishStatus::Stopped;
    std::uint64_t seq = 0;
    std::string error;

    bool durable() const {
        return status == PublishStatus::Appended || status == PublishStatus::Duplicate;
    }
};

struct PublisherOptions {
    // How long an unanswered event waits before it may be re-sent (see above).
    std::chrono::milliseconds retry_interval{1000};
    // A ZeroMQ context to make the socket in, so that many publishers in one process share its
    // I/O thread (it must outlive them); null: the publisher makes its own.
    zmq::context_t* context = nullptr;
    // No thread of its own: only the thread that constructs it may call it, and that thread
    // must call drive() whenever wait_fd() is readable and at least every scan_interval() (for
    // re-sends and deadlines). Publishes are sent at once, from inside the publish call, and
    // `done` callbacks run inside drive() (or a publish call), on that thread.
    bool driven_by_caller = false;
};

class Publisher {
public:
    using Deadline = std::chrono::steady_clock::time_point;
    using Done = std::function<void(PublishResult)>;

    // Connects to broker.publish, with broker.curve's keys when they are set.
    explicit Publisher(const Endpoints& broker, PublisherOptions options = {});
    ~Publisher();
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    // Queues the event and returns at once; the future resolves on ack, refusal, deadline
    // or shutdown.
    std::future<PublishResult> publish(const events::Event& event,
                                       Deadline give_up_at = Deadline::max(),
                                       WhenUnavailable when_unavailable = WhenUnavailable::Retry);

    // Queues every event at once (so they leave in one frame) and returns their futures.
    std::vector<std::future<PublishResult>> publish_many(
        std::span<const events::Event> batch, Deadline give_up_at = Deadline::max(),
        WhenUnavailable when_unavailable = WhenUnavailable::Retry);

    // Queues the event and returns at once; `done` is called once with the outcome, on the
    // publisher's I/O thread (or on this one if the publisher has stopped; driven by its
    // caller, inside a later drive()), so it must be quick: hand the result on, do not wait.
    // For a caller that has no thread to block (an event loop), and without a promise's cost
    // per publish.
    void publish_then(const events::Event& event, Deadline give_up_at,
                      WhenUnavailable when_unavailable, Done done);

    // publish_then for a batch: queued at once, so the events leave in one frame; `done` is
    // called once per event with its index in `batch`, where publish_then's would be.
    using DoneAt = std::function<void(std::size_t index, PublishResult)>;
    void publish_many_then(std::span<const events::Event> batch, Deadline give_up_at,
                           WhenUnavailable when_unavailable, DoneAt done);

    // Publishes every event (pipelined) and waits for all results.
    std::vector<PublishResult> publish_all(const std::vector<events::Event>& batch,
                                           Deadline give_up_at = Deadline::max());

    // Tells the broker that `consumer` has durably handled every event up to `seq` (what
    // retention waits for). Fire and forget: the latest value is sent once; call it again as
    // the checkpoint moves.
    void report_checkpoint(const std::string& consumer, std::uint64_t seq);

    // Driven by the caller only (each throws std::logic_error otherwise, or on another thread):
    // the descriptor that turns readable when the broker may have answered (the socket's
    // ZMQ_FD: poll it for POLLIN, never read it); drive() takes every answer in (running the
    // `done` callbacks), sends what is queued and re-sends what is due. ZeroMQ's descriptor
    // is readable only when something new arrived since the last drive(), so every wake-up
    // must be followed by a drive(), and every publish call drives already.
    int wait_fd() const;
    void drive();
    // How long the caller may wait on wait_fd() without calling drive().
    static std::chrono::milliseconds scan_interval();
    // Driven by the caller: drives until `done()` is true, waiting on wait_fd() between turns;
    // false if `give_up()` became true first (it is asked at least every scan_interval()).
    bool drive_until(const std::function<bool()>& done, const std::function<bool()>& give_up);

    // Resolves every pending publish with Stopped and ends the I/O thread. Idempotent.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace op::bus
