// Valid events for the integration tests that publish straight on the bus: a fresh order id
// each call unless one is given, ids derived as the services derive them.
#pragma once

#include <string>

#include "op/events/event.hpp"
#include "op/events/ids.hpp"

namespace op::test {

inline events::Event order_placed_event(const std::string& order_id = events::random_id(),
                                        const std::string& customer = "test") {
    events::Event e;
    e.order_id = order_id;
    e.id = events::derived_id(order_id, "OrderPlaced");
    e.ts = events::now_timestamp();
    e.data = events::OrderPlaced{"phone", 1, 1000, customer};
    return e;
}

// As payment would publish it for order_placed_event(order_id).
inline events::Event payment_verified_event(const std::string& order_id = events::random_id(),
                                            const std::string& customer = "test") {
    events::Event e;
    e.order_id = order_id;
    e.id = events::derived_id(order_id, "PaymentVerified");
    e.causation_id = events::derived_id(order_id, "OrderPlaced");
    e.ts = events::now_timestamp();
    e.data = events::PaymentVerified{"phone", 1, 1000, customer};
    return e;
}

}  // namespace op::test
