// Lets an HTTP thread wait for its order's outcome while the subscriber thread applies events.
// Register before publishing, so an outcome that arrives at once is never missed.
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
    struct Ticket {
        std::string order_id;
        std::shared_ptr<bool> decided;
    };

    Ticket enlist(const std::string& order_id) {
        std::lock_guard lock(mu_);
        auto& slot = waiting_[order_id];
        if (!slot) slot = std::make_shared<bool>(false);
        return {order_id, slot};
    }

    void decided(const std::string& order_id) {
        {
            std::lock_guard lock(mu_);
            auto it = waiting_.find(order_id);
            if (it == waiting_.end()) return;
            *it->second = true;
        }
        cv_.notify_all();
    }

    // True if decided before the deadline. Always withdraws the ticket.
    bool wait(const Ticket& ticket, std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mu_);
        const bool ok = cv_.wait_until(lock, deadline, [&] { return *ticket.decided; });
        auto it = waiting_.find(ticket.order_id);
        if (it != waiting_.end() && it->second == ticket.decided && it->second.use_count() <= 2) {
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
    std::condition_variable cv_;
    std::unordered_map<std::string, std::shared_ptr<bool>> waiting_;
};

}  // namespace op::order
