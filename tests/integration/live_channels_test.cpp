// The live feed's channels (protocol.hpp) against a real broker: a subscriber of some topics
// gets only their events, in seq order, and still moves its next seq past the other topics'
// events (from the heartbeats), so a service's checkpoint follows the log; a subscriber of all
// topics sees every event; one that joins late gets the earlier ones from replay, then live.
#include <doctest/doctest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "op/bus/publisher.hpp"
#include "op/bus/subscriber.hpp"
#include "op/events/event.hpp"
#include "sample_events.hpp"

using op::events::EventType;
using op::test::order_placed_event;
using op::test::payment_verified_event;
using op::test::poll_until;
using op::test::System;
using namespace std::chrono_literals;

namespace {

// Polls until `want` events came (or the deadline), appending them to `got`.
void collect(op::bus::Subscriber& sub, std::vector<op::bus::Delivery>& got, std::size_t want) {
    poll_until(10s, [&] {
        for (auto& d : sub.poll(50ms)) got.push_back(std::move(d));
        return got.size() >= want;
    });
}

void check_ascending(const std::vector<op::bus::Delivery>& got) {
    for (std::size_t i = 1; i < got.size(); ++i) CHECK(got[i].event.seq > got[i - 1].event.seq);
}

}  // namespace

TEST_CASE("live channels: a subscriber gets only its topics, in order, and moves past the rest") {
    System system;
    system.start("broker");
    op::bus::Publisher orders(system.client("replay"));   // may publish OrderPlaced
    op::bus::Publisher payments(system.client("payment"));  // may publish PaymentVerified

    op::bus::Subscriber paid({system.client("inventory"), {EventType::PaymentVerified}, 1});
    op::bus::Subscriber everything({system.client("order"), {}, 1});
    // Both caught up (on an empty log) and live before anything is published.
    REQUIRE(poll_until(10s, [&] {
        paid.poll(10ms);
        everything.poll(10ms);
        return paid.caught_up() && everything.caught_up();
    }));

    constexpr int kEvents = 41;  // every fourth a PaymentVerified; the last an OrderPlaced
    std::uint64_t last_seq = 0;
    for (int i = 0; i < kEvents; ++i) {
        auto& publisher = i % 4 == 3 ? payments : orders;
        const auto r =
            publisher.publish(i % 4 == 3 ? payment_verified_event() : order_placed_event(),
                              std::chrono::steady_clock::now() + 10s)
                .get();
        REQUIRE(r.status == op::bus::PublishStatus::Appended);
        last_seq = r.seq;
    }
    orders.stop();
    payments.stop();

    std::vector<op::bus::Delivery> got_paid, got_all;
    collect(paid, got_paid, kEvents / 4);
    collect(everything, got_all, kEvents);
    REQUIRE(got_paid.size() == kEvents / 4);
    for (const auto& d : got_paid) CHECK(d.event.type() == EventType::PaymentVerified);
    check_ascending(got_paid);
    REQUIRE(got_all.size() == kEvents);
    for (std::size_t i = 0; i < got_all.size(); ++i) CHECK(got_all[i].event.seq == i + 1);

    // The last event is an OrderPlaced: the PaymentVerified subscriber learns from a heartbeat
    // that nothing up to the head is its, so its checkpoint can pass it.
    CHECK(got_paid.back().event.seq < last_seq);
    CHECK(poll_until(10s, [&] {
        for (auto& d : paid.poll(50ms)) got_paid.push_back(std::move(d));
        return paid.next_seq() > last_seq;
    }));
    CHECK(got_paid.size() == kEvents / 4);  // and nothing more came
}

TEST_CASE("live channels: a subscriber that joins late gets the earlier events from replay, then live ones") {
    System system;
    system.start("broker");
    op::bus::Publisher orders(system.client("replay"));
    for (int i = 0; i < 25; ++i) {
        REQUIRE(orders.publish(order_placed_event(), std::chrono::steady_clock::now() + 10s).get()
                    .durable());
    }
    op::bus::Subscriber late({system.client("payment"), {EventType::OrderPlaced}, 1});
    std::vector<op::bus::Delivery> got;
    collect(late, got, 25);
    CHECK(got.size() == 25);
    for (int i = 0; i < 25; ++i) {
        REQUIRE(orders.publish(order_placed_event(), std::chrono::steady_clock::now() + 10s).get()
                    .durable());
    }
    collect(late, got, 50);
    REQUIRE(got.size() == 50);
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i].event.seq == i + 1);
    orders.stop();
}

TEST_CASE("live channels: a waiting subscriber returns at once for an event or for its wake fd, "
          "and waits out its timeout otherwise") {
    System system;
    system.start("broker");
    op::bus::Publisher orders(system.client("replay"));
    op::bus::Subscriber sub({system.client("order"), {}, 1});
    REQUIRE(poll_until(10s, [&] {
        sub.poll(10ms);
        return sub.caught_up();
    }));

    // Nothing published, nothing woken: the whole timeout passes, and nothing comes.
    auto started = std::chrono::steady_clock::now();
    CHECK(sub.poll(300ms).empty());
    CHECK(std::chrono::steady_clock::now() - started >= 300ms);

    // An event published while the subscriber waits ends the wait with it.
    std::thread publisher([&] {
        std::this_thread::sleep_for(100ms);  // let the subscriber block first
        (void)orders.publish(order_placed_event()).get();
    });
    started = std::chrono::steady_clock::now();
    std::vector<op::bus::Delivery> got;
    for (int i = 0; i < 3 && got.empty(); ++i) got = sub.poll(10s);  // heartbeats may come first
    publisher.join();
    REQUIRE(got.size() == 1);
    CHECK(got[0].event.type() == EventType::OrderPlaced);
    CHECK(std::chrono::steady_clock::now() - started < 5s);

    // The caller's wake fd ends the wait with nothing delivered.
    const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    REQUIRE(wake >= 0);
    std::thread waker([&] {
        std::this_thread::sleep_for(100ms);
        const std::uint64_t one = 1;
        CHECK(::write(wake, &one, sizeof one) == sizeof one);
    });
    started = std::chrono::steady_clock::now();
    bool woken = false;
    for (int i = 0; i < 3 && !woken; ++i) {
        CHECK(sub.poll(10s, 1000, wake).empty());
        std::uint64_t value = 0;
        woken = ::read(wake, &value, sizeof value) == sizeof value;
    }
    waker.join();
    ::close(wake);
    CHECK(woken);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
}
