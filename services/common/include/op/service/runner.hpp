// The loop every reacting service runs: take events from the subscriber in seq order, call the
// service's handler inside one SQLite transaction, publish what it returned, and once the
// broker has acknowledged all of it commit the state together with the checkpoint (when the
// feed pauses or the transaction is old enough: RunnerConfig::commit_when_quiet). Batches
// that arrive while acks are awaited are handled in the same transaction (up to
// max_uncommitted events) and their events published once those acks are in, so a service
// does not sit idle for the broker's fsync between batches, and its events still reach the log
// in the order of their causes.
//
// Publishing before committing is what makes a crash safe at any point: if the process dies
// after the acks but before the commit, the batch is handled again from the old checkpoint,
// the handler (deterministic, ids derived from causes) returns the same events, and the
// broker drops them as duplicates. Nothing is skipped and nothing is applied twice.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "op/bus/endpoints.hpp"
#include "op/events/event.hpp"
#include "op/store/db.hpp"

namespace op::service {

using Handler =
    std::function<std::vector<events::Event>(const events::Event& event, const std::string& now)>;

// Thrown by a handler for an event it cannot apply: a valid envelope with impossible content
// (a refund for an order never charged, say). The runner undoes whatever the handler did for
// that event, publishes a DeadLetter with this reason and the original, and moves on.
class PoisonEvent : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Runs the handler on one delivered event inside a savepoint of the caller's transaction, and
// returns what it produced. If the handler throws PoisonEvent, any other std::exception, or a
// constraint failure from the database, none of its effects remain and the result is one
// DeadLetter from `service`. Database errors that are not about the data (I/O, disk full)
// propagate: the event is fine, the service is not, and it must retry after a restart.
std::vector<events::Event> apply_one(store::Db& db, const std::string& service,
                                     const Handler& handler, const events::Event& event,
                                     const std::string& event_json, const std::string& now);

// Side effects outside the database (the notification outbox file), run after the acks and
// before the commit, so they happen at least once.
using AfterPublish = std::function<void(const std::vector<events::Event>& published)>;

struct RunnerConfig {
    std::string name;  // for log lines
    bus::Endpoints endpoints;
    std::vector<events::EventType> topics;
    std::size_t max_batch = 512;
    // Events handled while earlier acks are still awaited, all in one transaction: past this
    // many the runner takes no more until it has committed.
    std::size_t max_uncommitted = 4096;
    // A transaction whose events are all acknowledged is committed once no event has come for
    // commit_when_quiet, or commit_interval after it began, or at max_uncommitted, and when the
    // runner stops: not after every batch. Each commit writes every page the transaction
    // touched to the WAL, and at one client a service committed once per event it handled;
    // the events between two commits are in the broker's log, and a crash handles them again.
    // Zero for both: commit as soon as the acks are in.
    std::chrono::milliseconds commit_when_quiet{10};
    std::chrono::milliseconds commit_interval{100};
};

// Returns when `stop` is set, having committed what the broker acknowledged; a batch whose acks
// are not all in is rolled back and handled again next start.
void run_handler_loop(store::Db& db, const RunnerConfig& config, const Handler& handler,
                      const std::atomic<bool>& stop, const AfterPublish& after_publish = {});

// "PaymentVerified" for one event, "PaymentVerified+Shipped" for several, "-" for none.
std::string describe(const std::vector<events::Event>& events);

}  // namespace op::service
