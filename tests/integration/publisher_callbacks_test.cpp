// The publisher's `done` callbacks run on its own I/O thread, and a caller without a thread to
// block (an event loop, bench's generator) publishes again from them. Such a publish is queued
// on that same thread, which takes it before it polls again rather than waking itself through
// its pipe: this checks that every one of them still leaves, in order, against a real broker.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "harness.hpp"
#include "op/bus/publisher.hpp"
#include "op/events/event.hpp"
#include "op/events/ids.hpp"

using op::test::System;
using namespace std::chrono_literals;

namespace {

op::events::Event placed(int n) {
    op::events::Event e;
    e.order_id = op::events::random_id();
    e.id = op::events::derived_id(e.order_id, "OrderPlaced");
    e.ts = op::events::now_timestamp();
    e.data = op::events::OrderPlaced{"phone", 1 + n % 3, 1000, "callbacks"};
    return e;
}

}  // namespace

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
            placed(n), std::chrono::steady_clock::now() + 30s, op::bus::WhenUnavailable::Retry,
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
