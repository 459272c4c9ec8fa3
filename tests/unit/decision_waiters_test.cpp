// Unit tests of DecisionWaiters: a request waiting for its order's outcome is woken by the
// decision, and every way out of the wait leaves no entry behind (/healthz's waiting_requests
// must fall back to 0, and a test waits on exactly that).
#include "decision_waiters.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <thread>

using op::order::DecisionWaiters;
using Clock = std::chrono::steady_clock;

TEST_CASE("decision waiters: a decision wakes its order's request with the outcome, and leaving "
          "empties the map") {
    DecisionWaiters waiters;
    {
        const auto ticket = waiters.enlist("o1");
        CHECK(waiters.size() == 1);
        const op::order::Decision failed{true, "Insufficient funds"};
        std::thread decider([&] { waiters.decided("o1", failed); });
        CHECK(waiters.wait(ticket, Clock::now() + std::chrono::seconds(10)) == failed);
        decider.join();
    }
    CHECK(waiters.size() == 0);
}

TEST_CASE("decision waiters: no decision by the deadline is none; another order's does not count") {
    DecisionWaiters waiters;
    const auto ticket = waiters.enlist("o1");
    waiters.decided("o2", {});
    CHECK_FALSE(waiters.wait(ticket, Clock::now() + std::chrono::milliseconds(20)));
}

TEST_CASE("decision waiters: two requests for one order share it until both have left") {
    DecisionWaiters waiters;
    std::optional<DecisionWaiters::Ticket> first(waiters.enlist("o1"));
    {
        const auto retry = waiters.enlist("o1");
        CHECK(waiters.size() == 1);
        waiters.decided("o1", {});
        CHECK(waiters.wait(retry, Clock::now()));
    }
    CHECK(waiters.size() == 1);
    CHECK(waiters.wait(*first, Clock::now()));
    first.reset();
    CHECK(waiters.size() == 0);
}

TEST_CASE("decision waiters: leaving while the decision is being announced leaves nothing behind") {
    // decided() holds the slot while it notifies; a request that left in that moment used to
    // stay in the map for good.
    DecisionWaiters waiters;
    for (int i = 0; i < 2000; ++i) {
        const std::string id = "o" + std::to_string(i);
        std::optional<DecisionWaiters::Ticket> ticket(waiters.enlist(id));
        std::thread decider([&] { waiters.decided(id, {}); });
        waiters.wait(*ticket, Clock::now() + std::chrono::seconds(10));
        ticket.reset();
        decider.join();
    }
    CHECK(waiters.size() == 0);
}
