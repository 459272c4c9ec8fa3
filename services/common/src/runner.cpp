#include "op/service/runner.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <optional>
#include <span>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "op/bus/checkpoint_reporter.hpp"
#include "op/bus/publisher.hpp"
#include "op/bus/subscriber.hpp"
#include "op/events/ids.hpp"
#include "op/runtime/failpoint.hpp"

namespace op::service {

std::string describe(const std::vector<events::Event>& events) {
    if (events.empty()) return "-";
    std::string out;
    for (const auto& e : events) {
        if (!out.empty()) out += '+';
        out += e.type_name();
    }
    return out;
}

namespace {

// Publishes every event (pipelined) and drives the publisher until all are answered; false if
// `stop` came first.
bool publish_and_wait(bus::Publisher& publisher, const std::vector<events::Event>& batch,
                      std::vector<bus::PublishResult>& results, const std::atomic<bool>& stop) {
    auto futures = publisher.publish_many(batch);
    const bool answered = publisher.drive_until(
        [&] {
            for (auto& f : futures) {
                if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
            }
            return true;
        },
        [&] { return stop.load(); });
    if (!answered) return false;
    for (auto& f : futures) results.push_back(f.get());
    return true;
}

// The broker's answers to what the open transaction published. They arrive inside the
// publisher's drive(), on the runner's own thread (the publisher is driven by it).
class Acks {
public:
    // Room for n more answers; returns the index of the first.
    std::size_t expect(std::size_t n) {
        const std::size_t first = results_.size();
        results_.resize(first + n);
        outstanding_ += n;
        return first;
    }

    void arrived(std::size_t index, bus::PublishResult result) {
        results_[index] = std::move(result);
        --outstanding_;
    }

    bool all_in() const { return outstanding_ == 0; }

    // Every answer, in publish order, once all_in(); the next transaction starts empty.
    std::vector<bus::PublishResult> take() { return std::exchange(results_, {}); }

private:
    std::vector<bus::PublishResult> results_;
    std::size_t outstanding_ = 0;
};

// What the open transaction has handled and published, awaiting the acks before its commit.
struct Uncommitted {
    std::optional<store::Transaction> tx;
    std::vector<bus::Delivery> handled;  // every event handled in it
    std::vector<events::Event> outputs;  // what they produced, in publish order
    std::vector<std::size_t> cause_of;   // outputs[i] was produced by handled[cause_of[i]]
    std::size_t published = 0;           // outputs[0, published) are published
    std::chrono::steady_clock::time_point began;       // when tx was opened
    std::chrono::steady_clock::time_point last_event;  // when the last batch came

    bool open() const { return tx.has_value(); }
    // Everything handled is published and acknowledged: only the commit is left.
    bool settled(const Acks& acks) const {
        return open() && acks.all_in() && published == outputs.size();
    }
    // When a settled transaction is due to be committed (RunnerConfig::commit_when_quiet).
    std::chrono::steady_clock::time_point commit_due(const RunnerConfig& config) const {
        return std::min(last_event + config.commit_when_quiet, began + config.commit_interval);
    }
    void clear() {
        tx.reset();
        handled.clear();
        outputs.clear();
        cause_of.clear();
        published = 0;
    }
};

}  // namespace

std::vector<events::Event> apply_one(store::Db& db, const std::string& service,
                                     const Handler& handler, const events::Event& event,
                                     const std::string& event_json, const std::string& now) {
    // Prepared once and cached: this runs for every event a service handles.
    auto savepoint = [&](const char* sql) { db.prepare(sql).bind().run(); };
    auto undo = [&] {
        savepoint("ROLLBACK TO apply_one");
        savepoint("RELEASE apply_one");
    };
    std::string reason;
    savepoint("SAVEPOINT apply_one");
    try {
        auto produced = handler(event, now);
        savepoint("RELEASE apply_one");
        return produced;
    } catch (const PoisonEvent& e) {
        reason = e.what();
    } catch (const store::DbError& e) {
        if (!e.refused_data()) {
            // SQLite may already have rolled the whole transaction back (disk full, I/O
            // error); then the savepoint is gone, and the original error is the one to report.
            try {
                undo();
            } catch (const store::DbError&) {  // NOLINT(bugprone-empty-catch): rethrown below
            }
            throw;
        }
        reason = std::string("the database refused its effects: ") + e.what();
    } catch (const std::exception& e) {
        reason = std::string("the handler failed: ") + e.what();
    }
    undo();
    if (reason.size() > 1000) reason.resize(1000);
    spdlog::error("order {} seq {} {}: set aside as a DeadLetter: {}", event.order_id, event.seq,
                  event.type_name(), reason);
    return {events::dead_letter(event, event_json, service, std::move(reason), now)};
}

namespace {

// The acks of everything `open` published are in: set aside what the broker refused, run the
// side effects, and commit the state with the checkpoint. False if `stop` came first.
bool commit_when_acked(store::Db& db, const RunnerConfig& config, bus::Publisher& publisher,
                       Acks& acks, Uncommitted& open, std::uint64_t checkpoint,
                       const std::atomic<bool>& stop, const AfterPublish& after_publish) {
    const auto results = acks.take();
    // An event of ours that the broker refuses is a bug, and retrying will not help: set its
    // cause aside, so the refusal is on the bus for an operator, not only in our log.
    std::vector<events::Event> refused;
    const std::string now = events::now_timestamp();
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (results[i].status != bus::PublishStatus::Rejected) continue;
        const auto& cause = open.handled[open.cause_of[i]];
        spdlog::error("order {}: broker refused {}: {}", open.outputs[i].order_id,
                      open.outputs[i].type_name(), results[i].error);
        refused.push_back(events::dead_letter(
            cause.event, cause.json, config.name,
            fmt::format("the broker refused the {} it caused: {}", open.outputs[i].type_name(),
                        results[i].error.substr(0, 900)),
            now));
    }
    if (!refused.empty()) {
        std::vector<bus::PublishResult> refused_results;
        if (!publish_and_wait(publisher, refused, refused_results, stop)) return false;
        for (std::size_t i = 0; i < refused_results.size(); ++i) {
            if (!refused_results[i].durable()) {
                spdlog::error("order {}: the broker refused the DeadLetter too: {}",
                              refused[i].order_id, refused_results[i].error);
            }
        }
    }
    failpoint::hit(failpoint::kAfterPublish);
    if (after_publish) after_publish(open.outputs);
    db.set_checkpoint(checkpoint);
    open.tx->commit();
    open.clear();
    failpoint::hit(failpoint::kAfterCommit);
    return true;
}

}  // namespace

void run_handler_loop(store::Db& db, const RunnerConfig& config, const Handler& handler,
                      const std::atomic<bool>& stop, const AfterPublish& after_publish) {
    const std::uint64_t checkpoint = db.checkpoint();
    spdlog::info("{} starting from checkpoint seq {}", config.name, checkpoint);
    Acks acks;  // before the publisher, which may call into it until it stops
    bus::Subscriber subscriber(
        bus::SubscriberOptions{config.endpoints, config.topics, checkpoint + 1});
    // Driven by this thread, which waits on the broker's answers and on its subscriber in one
    // poll: no thread of the publisher's own to wake for each publish and each ack.
    bus::PublisherOptions publisher_options;
    publisher_options.driven_by_caller = true;
    bus::Publisher publisher(config.endpoints, publisher_options);
    bus::CheckpointReporter report_checkpoint(publisher, config.name);
    Uncommitted open;
    bool announced = false;

    // Sends what `open` handled since its last publish. Only ever with no ack outstanding, so a
    // service's events reach the log in the order of their causes even when a publish is lost
    // and re-sent (a broker restart): a later batch's events never overtake an earlier one's.
    auto publish_handled = [&] {
        const std::span<const events::Event> fresh(open.outputs.begin() + open.published,
                                                   open.outputs.end());
        open.published = open.outputs.size();
        if (fresh.empty()) return;
        const std::size_t first_ack = acks.expect(fresh.size());
        publisher.publish_many_then(fresh, bus::Publisher::Deadline::max(),
                                    bus::WhenUnavailable::Retry,
                                    [&acks, first_ack](std::size_t i, bus::PublishResult result) {
                                        acks.arrived(first_ack + i, std::move(result));
                                    });
    };

    for (;;) {
        if (open.open() && acks.all_in() && open.published < open.outputs.size()) {
            publish_handled();
        }
        if (open.settled(acks) &&
            (stop.load() || open.handled.size() >= config.max_uncommitted ||
             std::chrono::steady_clock::now() >= open.commit_due(config))) {
            // Every event polled so far was handled in `open`, so the subscriber's position is
            // the checkpoint.
            if (!commit_when_acked(db, config, publisher, acks, open, subscriber.next_seq() - 1,
                                   stop, after_publish)) {
                break;
            }
            report_checkpoint(db.checkpoint());
        }
        if (stop.load()) break;

        // While the acks of one batch are awaited the next ones are handled in the same
        // transaction, and their events published the moment those acks are in: a service does
        // not sit idle for the broker's fsync and then handle. The commit waits until all is
        // acknowledged; past max_uncommitted events it takes no more until then.
        // The publisher is driven after every wait, whatever ended it: its descriptor turns
        // readable again only for an answer that arrives after a drive(). And at least every
        // scan interval, for its re-sends and deadlines.
        // The answers wake this thread only when something waits on them: events handled while
        // earlier acks are out, or a commit that is due. Otherwise the drive() after the next
        // wait takes them, whatever ends it: at one client, a wake-up fewer for each event a
        // service publishes, and on this project's VM a wake-up costs 10-30 us of CPU.
        auto wait = bus::Publisher::scan_interval();
        bool wake_for_answers = !acks.all_in();
        if (open.open() && open.published == open.outputs.size()) {
            const auto until_due = std::chrono::ceil<std::chrono::milliseconds>(
                open.commit_due(config) - std::chrono::steady_clock::now());
            if (until_due > std::chrono::milliseconds(0)) {
                wake_for_answers = false;
                wait = std::min(wait, until_due);
            }
        }
        std::vector<bus::Delivery> batch;
        if (open.handled.size() < config.max_uncommitted) {
            batch = subscriber.poll(wait, config.max_batch,
                                    wake_for_answers ? publisher.wait_fd() : -1);
        } else {
            pollfd answers{publisher.wait_fd(), POLLIN, 0};
            ::poll(&answers, 1, static_cast<int>(wait.count()));
        }
        publisher.drive();
        if (!announced && subscriber.caught_up()) {
            announced = true;
            spdlog::info("{} caught up at seq {}, now live", config.name,
                         subscriber.next_seq() - 1);
        }
        if (batch.empty()) {
            if (!open.open()) {
                // Events of other topics still move the checkpoint, so a restart does not
                // rescan them; cheap enough to do only when idle.
                if (subscriber.next_seq() - 1 > db.checkpoint()) {
                    store::Transaction tx(db);
                    db.set_checkpoint(subscriber.next_seq() - 1);
                    tx.commit();
                }
                report_checkpoint(db.checkpoint());
            }
            continue;
        }

        if (!open.open()) {
            open.tx.emplace(db);
            open.began = std::chrono::steady_clock::now();
        }
        open.last_event = std::chrono::steady_clock::now();
        const std::string now = events::now_timestamp();
        for (auto& delivery : batch) {
            const auto& event = delivery.event;
            auto produced = apply_one(db, config.name, handler, event, delivery.json, now);
            spdlog::info("order {} seq {} {} -> {}", event.order_id, event.seq, event.type_name(),
                         describe(produced));
            for (auto& p : produced) {
                open.outputs.push_back(std::move(p));
                open.cause_of.push_back(open.handled.size());
            }
            open.handled.push_back(std::move(delivery));
        }
        if (acks.all_in()) publish_handled();  // nothing awaited: at once, as before
    }
    if (open.open()) {
        spdlog::info("{} stopping with {} handled events not committed; they are handled again "
                     "on start",
                     config.name, open.handled.size());
    }
    spdlog::info("{} stopped at checkpoint seq {}", config.name, db.checkpoint());
}

}  // namespace op::service
