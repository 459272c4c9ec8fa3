// Lets an HTTP thread wait for its order's outcome while the subscriber thread applies events.
// Register before publishing, so an outcome that arrives at once is never missed. Each order
// has its own condition variable: a decision wakes only the requests waiting for that order
// (one shared one woke all 64 waiting threads for every decision, and the scheduler then took
// most of the order service's CPU at 64 clients).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace op::order {

class DecisionWaiters {
public:
    // One order's outcome, shared by every request waiting for it (a client's retries too).
    struct Slot {
        bool decided = false;
        std::condition_variable cv;
    };

    struct Ticket {
        std::string order_id;
        std::shared_ptr<Slot> slot;
    };

    Ticket enlist(const std::string& order_id) {
        std::lock_guard lock(mu_);
        auto& slot = waiting_[order_id];
        if (!slot) slot = std::make_shared<Slot>();
        return {order_id, slot};
    }

    void decided(const std::string& order_id) {
        std::shared_ptr<Slot> slot;
        {
            std::lock_guard lock(mu_);
            auto it = waiting_.find(order_id);
            if (it == waiting_.end()) return;
            slot = it->second;
            slot->decided = true;
        }
        slot->cv.notify_all();
    }

    // True if decided before the deadline. Always withdraws the ticket.
    bool wait(const Ticket& ticket, std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mu_);
        const bool ok =
            ticket.slot->cv.wait_until(lock, deadline, [&] { return ticket.slot->decided; });
        auto it = waiting_.find(ticket.order_id);
        // The map's reference and this ticket's: nobody else waits on this slot.
        if (it != waiting_.end() && it->second == ticket.slot && it->second.use_count() <= 2) {
            waiting_.erase(it);
        }
        return ok;
    }

    std::size_t size() {
        std::lock_guard lock(mu_);
        return waiting_.size();
    }

private:
    std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<Slot>> waiting_;
};

}  // namespace op::order
