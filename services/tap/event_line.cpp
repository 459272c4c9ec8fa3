#include "event_line.hpp"

#include <fmt/format.h>

#include "op/events/money.hpp"

namespace op::tap {

using events::format_cents;

namespace {

std::string for_customer(const std::string& customer) {
    return customer.empty() ? std::string() : " for " + customer;
}

}  // namespace

std::string summary(const events::Event& e) {
    return std::visit(
        [](const auto& p) -> std::string {
            using T = std::decay_t<decltype(p)>;
            if constexpr (std::is_same_v<T, events::OrderPlaced>) {
                return fmt::format("order placed: {} x{} at {}{}", p.item, p.quantity,
                                   format_cents(p.amount_cents), for_customer(p.customer));
            } else if constexpr (std::is_same_v<T, events::PaymentVerified>) {
                return fmt::format("payment verified {}", format_cents(p.amount_cents));
            } else if constexpr (std::is_same_v<T, events::PaymentFailed>) {
                return fmt::format("payment failed: {} ({})", p.reason,
                                   format_cents(p.amount_cents));
            } else if constexpr (std::is_same_v<T, events::StockReserved>) {
                return fmt::format("stock reserved: {} x{} ({} left)", p.item, p.quantity,
                                   p.remaining);
            } else if constexpr (std::is_same_v<T, events::OutOfStock>) {
                if (p.reason == events::reason::kUnknownItem) {
                    return fmt::format("unknown item: {}", p.item);
                }
                return fmt::format("out of stock: {} x{} ({} left)", p.item, p.quantity,
                                   p.available);
            } else if constexpr (std::is_same_v<T, events::PaymentRefunded>) {
                return fmt::format("payment refunded {}: {}", format_cents(p.amount_cents),
                                   p.reason);
            } else if constexpr (std::is_same_v<T, events::Shipped>) {
                return fmt::format("shipped {} x{}, tracking {}", p.item, p.quantity,
                                   p.tracking_id);
            } else if constexpr (std::is_same_v<T, events::DeadLetter>) {
                return fmt::format("dead letter from {}: #{} {} set aside: {}", p.service,
                                   p.event_seq, p.event_type, p.reason);
            } else {
                return p.outcome == "success"
                           ? fmt::format("customer told: success{}", for_customer(p.customer))
                           : fmt::format("customer told: failed, {}{}", p.reason,
                                         for_customer(p.customer));
            }
        },
        e.data);
}

Tone tone(const events::Event& e) {
    switch (e.type()) {
        case events::EventType::OrderPlaced:
            return Tone::Neutral;
        case events::EventType::PaymentFailed:
        case events::EventType::OutOfStock:
        case events::EventType::DeadLetter:
            return Tone::Bad;
        case events::EventType::PaymentRefunded:
            return Tone::Compensation;
        case events::EventType::CustomerNotified:
            return e.as<events::CustomerNotified>()->outcome == "success" ? Tone::Good
                                                                         : Tone::Bad;
        default:
            return Tone::Good;
    }
}

std::pair<const char*, const char*> paint(Tone t, bool colour) {
    if (!colour) return {"", ""};
    switch (t) {
        case Tone::Good: return {"\033[32m", "\033[0m"};
        case Tone::Bad: return {"\033[31m", "\033[0m"};
        case Tone::Compensation: return {"\033[33m", "\033[0m"};
        case Tone::Neutral: break;
    }
    return {"\033[1m", "\033[0m"};
}

std::string line(const events::Event& e, bool colour) {
    // The time of day is what a person watching needs; the date is in --json.
    const std::string time = e.ts.size() > 11 ? e.ts.substr(11, e.ts.size() - 12) : e.ts;
    const auto [start, end] = paint(tone(e), colour);
    return fmt::format("{:<15}  #{:<6} {}{:<16}{}  {:.12}  {}", time, e.seq, start, e.type_name(),
                       end, e.order_id, summary(e));
}

}  // namespace op::tap
