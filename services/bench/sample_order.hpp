// A fresh, valid OrderPlaced (a new order id each call), as the services would publish it: what
// bench puts on the bus when it drives the broker alone, and the size of message its floor
// probes carry.
#pragma once

#include "op/events/event.hpp"
#include "op/events/ids.hpp"

namespace op::bench {

inline events::Event sample_order() {
    events::Event e;
    e.order_id = events::random_id();
    e.id = events::derived_id(e.order_id, "OrderPlaced");
    e.ts = events::now_timestamp();
    e.data = events::OrderPlaced{"phone", 1, 100000, "bench@example.com"};
    return e;
}

}  // namespace op::bench
