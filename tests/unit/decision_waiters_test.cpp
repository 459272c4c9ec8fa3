// Unit tests of DecisionWaiters: a request waiting for its order's outcome is answered once,
// by the decision or by its deadline, and nothing is left behind either way (/healthz's
// waiting_requests must fall back to 0, and a test waits on exactly that).
#include "decision_waiters.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

using op::order::Decision;
using op::order::DecisionWaiters;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// What one waiting request was answered, and how often.
struct Answered {
    int calls = 0;
    std::optional<Decision> decision;
    DecisionWaiters::Callback callback() {
        return [this](std::optional<Decision> d) {
            ++calls;
            decision = std::move(d);
        };
    }
};

}  // namespace

TEST_CASE("decision waiters: a decision answers its order's requests, from another thread") {
    DecisionWaiters waiters;
    Answered first;
    Answered retry;
    Answered other;
    const auto later = Clock::now() + 10s;
    waiters.enlist("o1", later, first.callback());
    waiters.enlist("o1", later, retry.callback());
    waiters.enlist("o2", later, other.callback());
    CHECK(waiters.size() == 3);
    const Decision failed{true, "Insufficient funds"};
    std::thread decider([&] { waiters.decided("o1", failed); });
    decider.join();
    CHECK(first.calls == 1);
    CHECK(first.decision == failed);
    CHECK(retry.calls == 1);
    CHECK(retry.decision == failed);
    CHECK(other.calls == 0);  // another order's decision does not count
    CHECK(waiters.size() == 1);
    waiters.decided("o1", {});  // decided again (a replay): nobody left to answer
    CHECK(first.calls == 1);
}

TEST_CASE("decision waiters: past its deadline a wait is answered with nothing, once") {
    DecisionWaiters waiters;
    Answered soon;
    Answered late;
    const auto now = Clock::now();
    waiters.enlist("o1", now + 100ms, soon.callback());
    waiters.enlist("o2", now + 10s, late.callback());
    waiters.expire(now + 50ms);
    CHECK(soon.calls == 0);
    waiters.expire(now + 100ms);
    CHECK(soon.calls == 1);
    CHECK_FALSE(soon.decision.has_value());
    CHECK(late.calls == 0);
    CHECK(waiters.size() == 1);
    waiters.decided("o1", {});  // the decision after the deadline finds nobody
    CHECK(soon.calls == 1);
    waiters.decided("o2", {});
    CHECK(late.calls == 1);
    CHECK(late.decision.has_value());
    waiters.expire(now + 1h);
    CHECK(late.calls == 1);
    CHECK(waiters.size() == 0);
}

TEST_CASE("decision waiters: many orders, decided and expired in any order, each answered once") {
    DecisionWaiters waiters;
    std::vector<Answered> answered(200);
    const auto now = Clock::now();
    for (int i = 0; i < 200; ++i) {
        waiters.enlist("o" + std::to_string(i % 50), now + std::chrono::milliseconds(i),
                       answered[static_cast<std::size_t>(i)].callback());
    }
    waiters.expire(now + 99ms);  // i < 100 expire
    for (int k = 0; k < 50; k += 2) waiters.decided("o" + std::to_string(k), {});
    waiters.expire(now + 1h);
    for (int i = 0; i < 200; ++i) {
        CAPTURE(i);
        const auto& a = answered[static_cast<std::size_t>(i)];
        CHECK(a.calls == 1);
        CHECK(a.decision.has_value() == (i >= 100 && (i % 50) % 2 == 0));
    }
    CHECK(waiters.size() == 0);
}

TEST_CASE("decision waiters: a withdrawn wait is never called, and the others stay") {
    DecisionWaiters waiters;
    Answered withdrawn;
    Answered kept;
    const auto later = Clock::now() + 10s;
    const auto ticket = waiters.enlist("o1", later, withdrawn.callback());
    waiters.enlist("o1", later, kept.callback());
    waiters.withdraw("o1", ticket);
    waiters.withdraw("o1", ticket);  // twice: nothing more happens
    waiters.withdraw("o2", ticket);  // another order's: nothing
    CHECK(waiters.size() == 1);
    waiters.decided("o1", {});
    CHECK(withdrawn.calls == 0);
    CHECK(kept.calls == 1);
    CHECK(waiters.size() == 0);
}
