#include "op/events/chain.hpp"

namespace op::events {

void OrderChain::apply(const Event& e) {
    switch (e.type()) {
        case EventType::OrderPlaced: placed_ = true; break;
        case EventType::PaymentVerified: paid_ = true; break;
        case EventType::PaymentFailed:
            failed_ = true;
            reason_ = e.as<PaymentFailed>()->reason;
            break;
        case EventType::StockReserved: reserved_ = true; break;
        case EventType::OutOfStock:
            failed_ = true;
            reason_ = e.as<OutOfStock>()->reason;
            break;
        case EventType::PaymentRefunded: refunded_ = true; break;
        case EventType::Shipped: shipped_ = true; break;
        case EventType::CustomerNotified: notified_ = true; break;
        case EventType::DeadLetter:
            dead_letters_.push_back(e.as<DeadLetter>()->service + ": " +
                                    e.as<DeadLetter>()->reason);
            break;
    }
}

bool OrderChain::terminal() const {
    if (!notified_) return false;
    if (failed_) return !paid_ || refunded_;
    return shipped_;
}

std::string OrderChain::outcome() const {
    if (failed_) return "failed: " + reason_;
    if (reserved_) return "success";
    return "pending";
}

std::vector<std::string> OrderChain::waiting_on() const {
    if (terminal()) return {};
    std::vector<std::string> out;
    // A service set one of this order's events aside: nothing moves until someone looks.
    for (const auto& d : dead_letters_) out.push_back("operator (dead letter from " + d + ")");
    if (!out.empty()) return out;
    if (failed_) {
        if (paid_ && !refunded_) out.push_back("payment (refund)");
        if (!notified_) out.push_back("notification");
        return out;
    }
    if (!placed_) return {"order"};
    if (!paid_) return {"payment"};
    if (!reserved_) return {"inventory"};
    if (!shipped_) return {"fulfilment"};
    return {"notification"};
}

}  // namespace op::events
