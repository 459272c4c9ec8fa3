// Where one order stands in the choreography, computed from its events alone: the outcome,
// whether anything more will happen, and which service the order is waiting on. Tools (tap,
// replay) use it to judge an order the way the read model does, without a database.
#pragma once

#include <string>
#include <vector>

#include "op/events/event.hpp"

namespace op::events {

class OrderChain {
public:
    void apply(const Event& event);

    bool placed() const { return placed_; }
    // The outcome is known: reserved (success) or failed.
    bool decided() const { return reserved_ || failed_; }
    // Nothing more will happen: the customer is told and any refund is done.
    bool terminal() const;
    // "success", "failed: <reason>", or "pending".
    std::string outcome() const;
    // The services the order waits on next ("payment", "inventory", ...); empty when terminal.
    std::vector<std::string> waiting_on() const;

private:
    bool placed_ = false;
    bool paid_ = false;
    bool reserved_ = false;
    bool shipped_ = false;
    bool failed_ = false;
    bool refunded_ = false;
    bool notified_ = false;
    std::string reason_;
    std::vector<std::string> dead_letters_;  // "service: reason" of each DeadLetter
};

}  // namespace op::events
