#include "op/events/event.hpp"

#include <array>

#include "op/events/ids.hpp"

namespace op::events {
namespace {

constexpr std::array<std::string_view, kEventTypeCount> kTypeNames = {
    "OrderPlaced",     "PaymentVerified", "PaymentFailed", "StockReserved",
    "OutOfStock",      "PaymentRefunded", "Shipped",       "CustomerNotified",
    "DeadLetter",
};
static_assert(std::variant_size_v<Payload> == kEventTypeCount);

}  // namespace

std::string_view type_name(EventType type) {
    return kTypeNames[static_cast<std::size_t>(type)];
}

int current_version(EventType type) { return type == EventType::OrderPlaced ? 2 : 1; }

std::optional<EventType> parse_type_name(std::string_view name) {
    for (std::size_t i = 0; i < kTypeNames.size(); ++i) {
        if (kTypeNames[i] == name) return static_cast<EventType>(i);
    }
    return std::nullopt;
}

Event derive(const Event& cause, Payload data, std::string ts) {
    Event out;
    out.data = std::move(data);
    out.id = derived_id(cause.id, out.type_name());
    out.order_id = cause.order_id;
    out.causation_id = cause.id;
    out.ts = std::move(ts);
    return out;
}

Event dead_letter(const Event& cause, std::string cause_json, std::string service,
                  std::string reason, std::string ts) {
    Event out;
    out.id = derived_id(cause.id, "DeadLetter/" + service);
    out.order_id = cause.order_id;
    out.causation_id = cause.id;
    out.ts = std::move(ts);
    out.data = DeadLetter{std::move(service), std::move(reason), cause.seq,
                          std::string(cause.type_name()), std::move(cause_json)};
    return out;
}

}  // namespace op::events
