#include "op/service/runner.hpp"

#include <spdlog/spdlog.h>

#include "op/bus/publisher.hpp"
#include "op/bus/subscriber.hpp"
#include "op/events/ids.hpp"

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

}  // namespace

void run_handler_loop(store::Db& db, const RunnerConfig& config, const Handler& handler,
                      const std::atomic<bool>& stop, const AfterPublish& after_publish) {
    const std::uint64_t checkpoint = db.checkpoint();
    spdlog::info("{} starting from checkpoint seq {}", config.name, checkpoint);
    bus::Subscriber subscriber(
        bus::SubscriberOptions{config.endpoints, config.topics, checkpoint + 1});
    bus::Publisher publisher(config.endpoints.publish);
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
            continue;
        }

        store::Transaction tx(db);
        std::vector<events::Event> outputs;
        const std::string now = events::now_timestamp();
        for (const auto& delivery : batch) {
            const auto& event = delivery.event;
            auto produced = handler(event, now);
            spdlog::info("order {} seq {} {} -> {}", event.order_id, event.seq, event.type_name(),
                         describe(produced));
            for (auto& p : produced) outputs.push_back(std::move(p));
        }

        std::vector<std::future<bus::PublishResult>> futures;
        futures.reserve(outputs.size());
        for (const auto& e : outputs) futures.push_back(publisher.publish(e));
        std::vector<bus::PublishResult> results;
        if (!await_all(futures, results, stop)) {
            spdlog::info("{} stopping with a batch unacknowledged; it is handled again on start",
                         config.name);
            return;  // tx rolls back
        }
        for (std::size_t i = 0; i < results.size(); ++i) {
            if (results[i].status == bus::PublishStatus::Rejected) {
                // Our own handler produced an event the broker refuses: a bug, not a retry.
                spdlog::error("order {}: broker refused {}: {}", outputs[i].order_id,
                              outputs[i].type_name(), results[i].error);
            }
        }
        if (after_publish) after_publish(outputs);
        db.set_checkpoint(subscriber.next_seq() - 1);
        tx.commit();
    }
    spdlog::info("{} stopped at checkpoint seq {}", config.name, db.checkpoint());
}

}  // namespace op::service
