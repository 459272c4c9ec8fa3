// The bus Publisher against a real broker and against a stand-in broker the test controls:
// publishes made from `done` callbacks (on the publisher's own I/O thread) all leave, in order;
// a broker that is slow but answering in order is not sent copies of what it has queued; a
// publish the broker lost is re-sent once the broker answers one sent after it. A publisher
// driven by its caller (no thread of its own) does the same, on the caller's thread only.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "harness.hpp"
#include "op/bus/batch_records.hpp"
#include "op/bus/protocol.hpp"
#include "op/bus/publisher.hpp"
#include "op/events/event.hpp"
#include "sample_events.hpp"

using op::test::System;
using op::test::order_placed_event;
using namespace std::chrono_literals;

TEST_CASE("publishes made from done callbacks, on the publisher's own thread, all go out in order") {
    System system;
    system.start("broker");
    // The replay tool's identity may publish OrderPlaced.
    op::bus::Publisher publisher(system.client("replay"));

    constexpr int kChains = 4;      // chains in flight at once
    constexpr int kPerChain = 150;  // each link published from the last one's callback
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::vector<std::uint64_t>> seqs(kChains);
    int finished = 0;
    std::atomic<int> failures{0};

    std::function<void(int, int)> link = [&](int chain, int n) {
        publisher.publish_then(
            order_placed_event(), std::chrono::steady_clock::now() + 30s,
            op::bus::WhenUnavailable::Retry,
            [&, chain, n](op::bus::PublishResult result) {
                if (result.status != op::bus::PublishStatus::Appended) ++failures;
                seqs[chain].push_back(result.seq);  // this chain's callbacks never overlap
                if (n + 1 < kPerChain && result.durable()) return link(chain, n + 1);
                std::lock_guard lock(mu);
                ++finished;
                cv.notify_all();
            });
    };
    for (int c = 0; c < kChains; ++c) link(c, 0);

    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, 60s, [&] { return finished == kChains; }));
    CHECK(failures == 0);
    for (const auto& chain : seqs) {
        REQUIRE(chain.size() == kPerChain);
        for (std::size_t i = 1; i < chain.size(); ++i) CHECK(chain[i] > chain[i - 1]);
    }
    lock.unlock();
    publisher.stop();
}

namespace {

// A stand-in for the broker's publish endpoint (plain, no CurveZMQ): it takes PUB and PUBS
// frames, counts every token it receives (re-sends included) and answers a token with ACK only
// when the test says so.
class StandInBroker {
public:
    StandInBroker() : router_(ctx_, zmq::socket_type::router) {
        router_.set(zmq::sockopt::linger, 0);
        router_.bind("tcp://127.0.0.1:*");
        endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    }

    op::bus::Endpoints endpoints() const {
        op::bus::Endpoints e;
        e.publish = endpoint_;
        return e;
    }

    // Receives what arrives within `wait`; returns the tokens in arrival order.
    std::vector<std::string> receive(std::chrono::milliseconds wait) {
        std::vector<std::string> tokens;
        zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, wait) <= 0) return tokens;
        std::vector<zmq::message_t> msg;
        while (zmq::recv_multipart(router_, std::back_inserter(msg), zmq::recv_flags::dontwait)) {
            if (msg.size() == 4 && msg[1].to_string_view() == op::bus::protocol::kPublish) {
                tokens.push_back(msg[2].to_string());
            } else if (msg.size() == 4 &&
                       msg[1].to_string_view() == op::bus::protocol::kPublishBatch) {
                op::bus::parse_records(msg[3].to_string_view(),
                                       [&](std::string_view token, std::string_view) {
                                           tokens.emplace_back(token);
                                       });
            }
            if (!msg.empty()) peer_ = msg[0].to_string();
            msg.clear();
        }
        for (const auto& t : tokens) ++received_[t];
        return tokens;
    }

    void ack(const std::string& token) {
        std::array<zmq::const_buffer, 4> frames = {zmq::buffer(peer_),
                                                   zmq::buffer(op::bus::protocol::kAck),
                                                   zmq::buffer(token), zmq::buffer(token)};
        zmq::send_multipart(router_, frames);
    }

    int times_received(const std::string& token) const {
        auto it = received_.find(token);
        return it == received_.end() ? 0 : it->second;
    }

private:
    zmq::context_t ctx_{1};
    zmq::socket_t router_;
    std::string endpoint_;
    std::string peer_;
    std::map<std::string, int> received_;
};

}  // namespace

TEST_CASE("publisher: a broker that is slow but answers in order is not sent copies of what it holds") {
    StandInBroker broker;
    op::bus::PublisherOptions options;
    options.retry_interval = std::chrono::milliseconds(600);
    op::bus::Publisher publisher(broker.endpoints(), options);

    constexpr int kEvents = 120;
    std::vector<std::future<op::bus::PublishResult>> results;
    for (int i = 0; i < kEvents; ++i) results.push_back(publisher.publish(order_placed_event()));

    // All of them arrive; then one answer every ~10 ms, in order: the last is answered ~1.2 s
    // on, two retry intervals after it was sent, while answers never stop coming.
    std::vector<std::string> queue;
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (queue.size() < kEvents && std::chrono::steady_clock::now() < give_up) {
        for (auto& t : broker.receive(100ms)) queue.push_back(t);
    }
    REQUIRE(queue.size() == kEvents);
    for (const auto& token : queue) {
        broker.ack(token);
        broker.receive(10ms);
    }
    for (auto& r : results) {
        REQUIRE(r.wait_for(10s) == std::future_status::ready);
        CHECK(r.get().status == op::bus::PublishStatus::Appended);
    }
    broker.receive(100ms);
    for (const auto& token : queue) {
        CAPTURE(token);
        CHECK(broker.times_received(token) == 1);
    }
    publisher.stop();
}

namespace {

// A publish the stand-in drops is re-sent once the stand-in answers one sent after it. Driven
// by its caller, the publisher takes answers in and re-sends only inside drive(), which this
// thread then calls between its looks at the stand-in; with its own thread it needs nothing.
void check_lost_publish_resent(bool driven_by_caller) {
    StandInBroker broker;
    op::bus::PublisherOptions options;
    options.retry_interval = std::chrono::milliseconds(300);
    options.driven_by_caller = driven_by_caller;
    op::bus::Publisher publisher(broker.endpoints(), options);
    auto turn = [&] {
        if (driven_by_caller) publisher.drive();
    };

    auto lost = publisher.publish(order_placed_event());
    std::vector<std::string> first;
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (first.empty() && std::chrono::steady_clock::now() < give_up) {
        first = broker.receive(100ms);
        turn();
    }
    REQUIRE(first.size() == 1);
    const std::string lost_token = first.front();  // dropped: never answered

    // Later publishes are answered at once and keep coming, so the broker never looks quiet:
    // only their being answered says the first one was lost.
    std::vector<std::future<op::bus::PublishResult>> later;
    while (broker.times_received(lost_token) < 2 && std::chrono::steady_clock::now() < give_up) {
        later.push_back(publisher.publish(order_placed_event()));
        for (auto& t : broker.receive(50ms)) {
            if (t != lost_token) broker.ack(t);
        }
        turn();
    }
    REQUIRE(broker.times_received(lost_token) == 2);
    broker.ack(lost_token);
    // The last of the later publishes may still be on its way to the stand-in: take and answer
    // whatever arrives until every one of them is resolved.
    auto all_resolved = [&] {
        if (lost.wait_for(0s) != std::future_status::ready) return false;
        for (auto& r : later) {
            if (r.wait_for(0s) != std::future_status::ready) return false;
        }
        return true;
    };
    while (!all_resolved() && std::chrono::steady_clock::now() < give_up) {
        for (auto& t : broker.receive(20ms)) broker.ack(t);
        turn();
    }
    REQUIRE(all_resolved());
    CHECK(lost.get().status == op::bus::PublishStatus::Appended);
    for (auto& r : later) CHECK(r.get().durable());
    publisher.stop();
}

}  // namespace

TEST_CASE("publisher: a publish the broker lost is re-sent once it answers one sent after it") {
    check_lost_publish_resent(false);
}

TEST_CASE("publisher driven by its caller: callbacks' publishes go out in order, on its thread") {
    System system;
    system.start("broker");
    op::bus::PublisherOptions options;
    options.driven_by_caller = true;
    op::bus::Publisher publisher(system.client("replay"), options);
    const auto owner = std::this_thread::get_id();

    constexpr int kChains = 4;
    constexpr int kPerChain = 100;
    std::vector<std::vector<std::uint64_t>> seqs(kChains);
    int finished = 0;
    int failures = 0;
    int off_thread = 0;
    std::function<void(int, int)> link = [&](int chain, int n) {
        publisher.publish_then(order_placed_event(), std::chrono::steady_clock::now() + 30s,
                               op::bus::WhenUnavailable::Retry,
                               [&, chain, n](op::bus::PublishResult result) {
                                   if (std::this_thread::get_id() != owner) ++off_thread;
                                   if (result.status != op::bus::PublishStatus::Appended) {
                                       ++failures;
                                   }
                                   seqs[chain].push_back(result.seq);
                                   if (n + 1 < kPerChain && result.durable()) {
                                       return link(chain, n + 1);
                                   }
                                   ++finished;
                               });
    };
    for (int c = 0; c < kChains; ++c) link(c, 0);
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    REQUIRE(publisher.drive_until([&] { return finished == kChains; },
                                  [&] { return std::chrono::steady_clock::now() > give_up; }));
    CHECK(failures == 0);
    CHECK(off_thread == 0);
    for (const auto& chain : seqs) {
        REQUIRE(chain.size() == kPerChain);
        for (std::size_t i = 1; i < chain.size(); ++i) CHECK(chain[i] > chain[i - 1]);
    }

    // publish_all drives it too, and the checkpoint report goes out with it.
    publisher.report_checkpoint("replay", 1);
    const auto results = publisher.publish_all({order_placed_event(), order_placed_event()});
    REQUIRE(results.size() == 2);
    CHECK(results[0].status == op::bus::PublishStatus::Appended);
    CHECK(results[1].seq == results[0].seq + 1);

    // Only its own thread may touch it; a threaded publisher is not driven.
    std::thread other([&] {
        CHECK_THROWS_AS(publisher.drive(), std::logic_error);
        CHECK_THROWS_AS(publisher.publish(order_placed_event()), std::logic_error);
    });
    other.join();
    op::bus::Publisher threaded(system.client("replay"));
    CHECK_THROWS_AS(threaded.drive(), std::logic_error);

    // Stopped from inside a callback (the connection is closed once drive() is out of it):
    // a publish made after that is refused at once, and driving it again does nothing.
    bool stopped = false;
    auto first = publisher.publish(order_placed_event());
    publisher.publish_then(order_placed_event(), op::bus::Publisher::Deadline::max(),
                           op::bus::WhenUnavailable::Retry, [&](op::bus::PublishResult result) {
                               CHECK(result.status == op::bus::PublishStatus::Appended);
                               publisher.stop();
                               stopped = true;
                           });
    REQUIRE(publisher.drive_until([&] { return stopped; },
                                  [&] { return std::chrono::steady_clock::now() > give_up; }));
    // The broker answers a connection's publishes in order: the first is in already.
    REQUIRE(first.wait_for(0s) == std::future_status::ready);
    CHECK(first.get().status == op::bus::PublishStatus::Appended);
    auto late = publisher.publish(order_placed_event());
    REQUIRE(late.wait_for(0s) == std::future_status::ready);
    CHECK(late.get().status == op::bus::PublishStatus::Stopped);
    publisher.drive();
    CHECK(publisher.wait_fd() == -1);
}

TEST_CASE("publisher driven by its caller: a lost publish is re-sent once a later one is answered") {
    check_lost_publish_resent(true);
}
