// Fuzz target: the HTTP order-body parser, the first code an untrusted client reaches. Any body
// must be accepted as a valid order or refused with a 4xx and a message, never crash; an
// accepted order always satisfies the limits the events library enforces.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "op/events/event.hpp"
#include "order_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace limits = op::events::limits;
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const auto parsed = op::order::parse_order_request(body);
    if (!parsed.order) {
        const auto status = parsed.error.http_status;
        if (status < 400 || status > 499 || parsed.error.message.empty()) std::abort();
        return 0;
    }
    const auto& o = *parsed.order;
    if (o.item.empty() || o.item.size() > limits::kMaxIdLength) std::abort();
    if (o.quantity < 1 || o.quantity > limits::kMaxQuantity) std::abort();
    if (o.amount_cents < 1) std::abort();
    if (o.customer.size() > limits::kMaxTextLength) std::abort();
    return 0;
}
