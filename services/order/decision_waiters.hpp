// Lets an HTTP thread wait for its order's outcome while the subscriber thread applies events.
// Register before publishing, so an outcome that arrives at once is never missed. Each order
// has its own condition variable: a decision wakes only the requests waiting for that order
// (one shared one woke all 64 waiting threads for every decision, and the scheduler then took
// most of the order service's CPU at 64 clients). The decision travels with the wake-up, so the
// woken request answers without taking the read model's lock (which the subscriber thread
// holds while it applies the next batch: at 64 clients each answer waited for it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "decision.hpp"

namespace op::order {

class DecisionWaiters {
    struct Slot {
        std::optional<Decision> decision;  // guarded by mu_
        std::size_t tickets = 0;  // guarded by mu_: tickets alive for this order
        std::condition_variable cv;
    };

public:
    // A request's place in the wait for one order's outcome; leaving it (destruction) takes
    // the order out of the map once no other request waits for it. Counted, not judged by
    // shared_ptr::use_count(): decided() holds a reference of its own while it notifies, and
    // a slot withdrawn in that moment used to stay in the map for good.
    class Ticket {
    public:
        Ticket(const Ticket&) = delete;
        Ticket& operator=(const Ticket&) = delete;
        Ticket& operator=(Ticket&&) = delete;
        Ticket(Ticket&& other) noexcept
            : owner_(std::exchange(other.owner_, nullptr)),
              order_id_(std::move(other.order_id_)),
              slot_(std::move(other.slot_)) {}
        ~Ticket() {
            if (owner_ != nullptr) owner_->withdraw(order_id_, slot_);
        }

    private:
        friend class DecisionWaiters;
        Ticket(DecisionWaiters* owner, std::string order_id, std::shared_ptr<Slot> slot)
            : owner_(owner), order_id_(std::move(order_id)), slot_(std::move(slot)) {}

        DecisionWaiters* owner_;
        std::string order_id_;
        std::shared_ptr<Slot> slot_;
    };

    Ticket enlist(const std::string& order_id) {
        std::lock_guard lock(mu_);
        auto& slot = waiting_[order_id];
        if (!slot) slot = std::make_shared<Slot>();
        ++slot->tickets;
        return Ticket(this, order_id, slot);
    }

    void decided(const std::string& order_id, const Decision& decision) {
        std::shared_ptr<Slot> slot;
        {
            std::lock_guard lock(mu_);
            auto it = waiting_.find(order_id);
            if (it == waiting_.end()) return;
            slot = it->second;
            slot->decision = decision;
        }
        slot->cv.notify_all();
    }

    // The order's outcome if it was decided before the deadline.
    std::optional<Decision> wait(const Ticket& ticket,
                                 std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mu_);
        ticket.slot_->cv.wait_until(lock, deadline,
                                    [&] { return ticket.slot_->decision.has_value(); });
        return ticket.slot_->decision;
    }

    std::size_t size() {
        std::lock_guard lock(mu_);
        return waiting_.size();
    }

private:
    void withdraw(const std::string& order_id, const std::shared_ptr<Slot>& slot) {
        std::lock_guard lock(mu_);
        if (--slot->tickets > 0) return;
        auto it = waiting_.find(order_id);
        if (it != waiting_.end() && it->second == slot) waiting_.erase(it);
    }

    std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<Slot>> waiting_;
};

}  // namespace op::order
