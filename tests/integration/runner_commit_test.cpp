// The services' handler loop (op::service::run_handler_loop) against a real broker, on this
// test's thread: a transaction whose events the broker acknowledged is not committed after
// each event but when the feed pauses (RunnerConfig::commit_when_quiet) or when it is old
// enough (commit_interval), and a graceful stop commits it instead of leaving it to be handled
// again on the next start. The checkpoint is read from the service's database beside the
// running loop, as an operator would (WAL lets a reader in).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "harness.hpp"
#include "inspect.hpp"
#include "op/bus/publisher.hpp"
#include "op/bus/subscriber.hpp"
#include "op/events/event.hpp"
#include "op/events/ids.hpp"
#include "op/service/runner.hpp"
#include "op/store/db.hpp"
#include "sample_events.hpp"

using namespace std::chrono_literals;
using op::test::checkpoint_of;
using op::test::System;

namespace {

// A payment stand-in: every OrderPlaced is answered with a PaymentVerified. It runs as
// "payment", the identity the broker lets publish PaymentVerified, in DATA_DIR/payment.db
// (where checkpoint_of reads).
class PaymentLoop {
public:
    PaymentLoop(const System& system, std::chrono::milliseconds quiet,
                std::chrono::milliseconds interval) {
        op::service::RunnerConfig config;
        config.name = "payment";
        config.endpoints = system.client("payment");
        config.topics = {op::events::EventType::OrderPlaced};
        config.commit_when_quiet = quiet;
        config.commit_interval = interval;
        const auto path = system.data_dir() / "payment.db";
        thread_ = std::thread([this, config, path] {
            op::store::Db db(path);
            op::service::run_handler_loop(
                db, config,
                [](const op::events::Event& e, const std::string& now) {
                    const auto* placed = e.as<op::events::OrderPlaced>();
                    if (placed == nullptr) return std::vector<op::events::Event>{};
                    return std::vector<op::events::Event>{op::events::derive(
                        e,
                        op::events::PaymentVerified{placed->item, placed->quantity,
                                                    placed->amount_cents, placed->customer},
                        now)};
                },
                stop_);
        });
    }
    ~PaymentLoop() { stop(); }
    PaymentLoop(const PaymentLoop&) = delete;
    PaymentLoop& operator=(const PaymentLoop&) = delete;

    // As a SIGTERM does in a service: the loop finishes its turn and returns.
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// Places an order as the order service would (identity "replay" may publish OrderPlaced),
// waits until the loop's PaymentVerified for it is in the broker's log, and returns the
// OrderPlaced's seq.
std::uint64_t place_and_wait_for_payment(const System& system, op::bus::Publisher& placer) {
    const auto placed = op::test::order_placed_event();
    const auto result = placer.publish(placed).get();
    REQUIRE(result.durable());
    op::bus::Subscriber paid(op::bus::SubscriberOptions{
        system.client("operator"), {op::events::EventType::PaymentVerified}, result.seq});
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
        for (const auto& d : paid.poll(100ms)) {
            if (d.event.order_id == placed.order_id) return result.seq;
        }
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                        "no PaymentVerified for order " << placed.order_id << " within 30 s");
    }
}

// A publish of an event the loop does not follow, acknowledged: the broker answers in the
// order it appends, so the loop's last ack was on its way before this one came back, and a
// stop now finds the loop's work acknowledged rather than racing its ack.
void barrier(const System& system) {
    op::bus::Publisher notifier(system.client("notification"));
    const auto told = op::events::derive(op::test::order_placed_event(),
                                         op::events::CustomerNotified{"success", "", "test"},
                                         op::events::now_timestamp());
    REQUIRE(notifier.publish(told).get().durable());
    notifier.stop();
}

}  // namespace

TEST_CASE("runner: acknowledged work waits for a pause to be committed, and a stop commits it") {
    System system;
    system.start("broker");
    op::bus::Publisher placer(system.client("replay"));

    SUBCASE("no pause and not old enough: nothing committed while running; the stop commits") {
        PaymentLoop loop(system, 1h, 1h);
        const auto first = place_and_wait_for_payment(system, placer);
        const auto second = place_and_wait_for_payment(system, placer);
        CHECK(second > first);
        // Both handled, both answered in the log, neither committed: the checkpoint is where the
        // loop started. (A loop that committed as soon as a batch's acks were in, as it did
        // before commit_when_quiet, would have committed the first order while the second was
        // placed; one that commits a little later cannot be told apart here without waiting.)
        CHECK(checkpoint_of(system, "payment") == 0);
        barrier(system);
        loop.stop();
        CHECK(checkpoint_of(system, "payment") >= second);
    }

    SUBCASE("a pause commits, with the loop still running") {
        PaymentLoop loop(system, 10ms, 1h);
        const auto seq = place_and_wait_for_payment(system, placer);
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while (checkpoint_of(system, "payment") < seq) {
            REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "the checkpoint did not reach " << seq << " within 30 s");
            std::this_thread::sleep_for(10ms);  // a poll interval, not a wait for the result
        }
    }

    SUBCASE("a transaction old enough commits even while events keep coming") {
        PaymentLoop loop(system, 1h, 50ms);
        std::uint64_t seq = 0;
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        // Orders keep coming (no pause of an hour), yet the checkpoint moves.
        do {
            seq = place_and_wait_for_payment(system, placer);
            REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "the checkpoint did not move within 30 s of steady orders");
        } while (checkpoint_of(system, "payment") == 0);
        CHECK(checkpoint_of(system, "payment") <= seq);
    }
    placer.stop();
}
