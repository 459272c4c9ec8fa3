#include "op/service/runner.hpp"

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

// Waits for every result, giving up (returns false) if `stop` is set first.
bool await_all(std::vector<std::future<bus::PublishResult>>& futures,
               std::vector<bus::PublishResult>& results, const std::atomic<bool>& stop) {
    for (auto& f : futures) {
        while (f.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
            if (stop.load()) return false;
        }
        results.push_back(f.get());
    }
    return true;
}

// Publishes every event (pipelined) and waits for all acks; false if `stop` came first.
bool publish_and_wait(bus::Publisher& publisher, const std::vector<events::Event>& batch,
                      std::vector<bus::PublishResult>& results, const std::atomic<bool>& stop) {
    auto futures = publisher.publish_many(batch);
    return await_all(futures, results, stop);
}

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

void run_handler_loop(store::Db& db, const RunnerConfig& config, const Handler& handler,
                      const std::atomic<bool>& stop, const AfterPublish& after_publish) {
    const std::uint64_t checkpoint = db.checkpoint();
    spdlog::info("{} starting from checkpoint seq {}", config.name, checkpoint);
    bus::Subscriber subscriber(
        bus::SubscriberOptions{config.endpoints, config.topics, checkpoint + 1});
    bus::Publisher publisher(config.endpoints);
    bus::CheckpointReporter report_checkpoint(publisher, config.name);
    bool announced = false;

    while (!stop.load()) {
        auto batch = subscriber.poll(std::chrono::milliseconds(100), config.max_batch);
        if (!announced && subscriber.caught_up()) {
            announced = true;
            spdlog::info("{} caught up at seq {}, now live", config.name,
                         subscriber.next_seq() - 1);
        }
        if (batch.empty()) {
            // Events of other topics still move the checkpoint, so a restart does not rescan
            // them; cheap enough to do only when idle.
            if (subscriber.next_seq() - 1 > db.checkpoint()) {
                store::Transaction tx(db);
                db.set_checkpoint(subscriber.next_seq() - 1);
                tx.commit();
            }
            report_checkpoint(db.checkpoint());
            continue;
        }

        store::Transaction tx(db);
        std::vector<events::Event> outputs;
        std::vector<std::size_t> cause_of;  // outputs[i] was produced by batch[cause_of[i]]
        const std::string now = events::now_timestamp();
        for (std::size_t b = 0; b < batch.size(); ++b) {
            const auto& event = batch[b].event;
            auto produced = apply_one(db, config.name, handler, event, batch[b].json, now);
            spdlog::info("order {} seq {} {} -> {}", event.order_id, event.seq, event.type_name(),
                         describe(produced));
            for (auto& p : produced) {
                outputs.push_back(std::move(p));
                cause_of.push_back(b);
            }
        }

        std::vector<bus::PublishResult> results;
        if (!publish_and_wait(publisher, outputs, results, stop)) {
            spdlog::info("{} stopping with a batch unacknowledged; it is handled again on start",
                         config.name);
            return;  // tx rolls back
        }
        // An event of ours that the broker refuses is a bug, and retrying will not help: set
        // its cause aside, so the refusal is on the bus for an operator, not only in our log.
        std::vector<events::Event> refused;
        for (std::size_t i = 0; i < results.size(); ++i) {
            if (results[i].status != bus::PublishStatus::Rejected) continue;
            const auto& cause = batch[cause_of[i]];
            spdlog::error("order {}: broker refused {}: {}", outputs[i].order_id,
                          outputs[i].type_name(), results[i].error);
            refused.push_back(events::dead_letter(
                cause.event, cause.json, config.name,
                fmt::format("the broker refused the {} it caused: {}", outputs[i].type_name(),
                            results[i].error.substr(0, 900)),
                now));
        }
        if (!refused.empty()) {
            std::vector<bus::PublishResult> refused_results;
            if (!publish_and_wait(publisher, refused, refused_results, stop)) return;
            for (std::size_t i = 0; i < refused_results.size(); ++i) {
                if (!refused_results[i].durable()) {
                    spdlog::error("order {}: the broker refused the DeadLetter too: {}",
                                  refused[i].order_id, refused_results[i].error);
                }
            }
        }
        failpoint::hit(failpoint::kAfterPublish);
        if (after_publish) after_publish(outputs);
        db.set_checkpoint(subscriber.next_seq() - 1);
        tx.commit();
        failpoint::hit(failpoint::kAfterCommit);
        report_checkpoint(db.checkpoint());
    }
    spdlog::info("{} stopped at checkpoint seq {}", config.name, db.checkpoint());
}

}  // namespace op::service
