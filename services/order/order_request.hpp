// The body of POST /place-order and POST /orders, validated. Parsing keeps each number's
// text, so the amount becomes cents exactly (5000.01 stays 500001; 10.005 is refused).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "op/events/event.hpp"

namespace op::order {

struct OrderRequest {
    std::string item;
    std::int64_t quantity = 1;
    events::Cents amount_cents = 0;
    std::string customer;
};

struct RequestError {
    int http_status;  // 400 malformed JSON, 422 well-formed but invalid
    std::string message;
};

struct ParsedRequest {
    std::optional<OrderRequest> order;
    RequestError error{0, {}};
};

ParsedRequest parse_order_request(std::string_view body);

}  // namespace op::order
