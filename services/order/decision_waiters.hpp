// POST /place-order requests waiting for their order's outcome, without a thread each: a
// request leaves a callback here, the read model's thread calls it with the decision as it
// applies the event that decides the order, and the HTTP loop's tick calls it with nothing once
// its deadline has passed. Each callback is called exactly once, outside the lock.
//
// Enlist before publishing (or before looking the order up), so an outcome that arrives at
// once is never missed.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "decision.hpp"

namespace op::order {

class DecisionWaiters {
public:
    using Clock = std::chrono::steady_clock;
    // The decision, or nullopt when the deadline passed first.
    using Callback = std::function<void(std::optional<Decision>)>;

    // Returns the wait's ticket, for withdraw().
    std::uint64_t enlist(const std::string& order_id, Clock::time_point deadline,
                         Callback callback) {
        std::lock_guard lock(mu_);
        const auto ticket = next_ticket_++;
        waiting_[order_id].push_back({ticket, deadline, std::move(callback)});
        ++count_;
        earliest_ = std::min(earliest_, deadline);
        return ticket;
    }

    // Takes a wait out without calling it: its request was answered another way (the order
    // was decided already, or could not be placed).
    void withdraw(const std::string& order_id, std::uint64_t ticket) {
        std::lock_guard lock(mu_);
        auto it = waiting_.find(order_id);
        if (it == waiting_.end()) return;
        auto& list = it->second;
        const auto w = std::find_if(list.begin(), list.end(),
                                    [&](const Waiter& x) { return x.ticket == ticket; });
        if (w == list.end()) return;
        list.erase(w);
        --count_;
        if (list.empty()) waiting_.erase(it);
    }

    // The order is decided: every request waiting for it is answered.
    void decided(const std::string& order_id, const Decision& decision) {
        std::vector<Waiter> found;
        {
            std::lock_guard lock(mu_);
            auto it = waiting_.find(order_id);
            if (it == waiting_.end()) return;
            found = std::move(it->second);
            waiting_.erase(it);
            count_ -= found.size();
        }
        for (auto& w : found) w.callback(decision);
    }

    // Answers every wait whose deadline has passed by `now`.
    void expire(Clock::time_point now) {
        std::vector<Waiter> due;
        {
            std::lock_guard lock(mu_);
            if (now < earliest_) return;  // the common case: nothing is due yet
            earliest_ = Clock::time_point::max();
            for (auto it = waiting_.begin(); it != waiting_.end();) {
                auto& list = it->second;
                for (auto w = list.begin(); w != list.end();) {
                    if (w->deadline <= now) {
                        due.push_back(std::move(*w));
                        w = list.erase(w);
                    } else {
                        earliest_ = std::min(earliest_, w->deadline);
                        ++w;
                    }
                }
                it = list.empty() ? waiting_.erase(it) : std::next(it);
            }
            count_ -= due.size();
        }
        for (auto& w : due) w.callback(std::nullopt);
    }

    // Requests waiting.
    std::size_t size() {
        std::lock_guard lock(mu_);
        return count_;
    }

private:
    struct Waiter {
        std::uint64_t ticket;
        Clock::time_point deadline;
        Callback callback;
    };

    std::mutex mu_;
    std::unordered_map<std::string, std::vector<Waiter>> waiting_;  // guarded by mu_
    std::size_t count_ = 0;                                          // guarded by mu_
    std::uint64_t next_ticket_ = 1;                                  // guarded by mu_
    Clock::time_point earliest_ = Clock::time_point::max();          // guarded by mu_
};

}  // namespace op::order
