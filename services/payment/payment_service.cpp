#include "payment_service.hpp"

#include <spdlog/spdlog.h>

#include "op/service/runner.hpp"

namespace op::payment {

using events::Event;

PaymentService::PaymentService(store::Db& db, PaymentConfig config) : db_(db), config_(config) {
    db_.exec(
        "CREATE TABLE IF NOT EXISTS payments ("
        " order_id TEXT PRIMARY KEY,"
        " amount_cents INTEGER NOT NULL,"
        " status TEXT NOT NULL CHECK (status IN ('verified', 'failed', 'refunded')))");
}

std::vector<events::EventType> PaymentService::topics() {
    return {events::EventType::OrderPlaced, events::EventType::OutOfStock};
}

std::vector<Event> PaymentService::handle(const Event& event, const std::string& now) {
    if (const auto* placed = event.as<events::OrderPlaced>()) {
        return on_placed(event, *placed, now);
    }
    if (const auto* shortage = event.as<events::OutOfStock>()) {
        return on_out_of_stock(event, *shortage, now);
    }
    return {};
}

std::vector<Event> PaymentService::on_placed(const Event& event, const events::OrderPlaced& placed,
                                             const std::string& now) {
    auto& existing = db_.prepare("SELECT status FROM payments WHERE order_id = ?");
    if (existing.bind(event.order_id).step()) {
        spdlog::warn("order {}: already {}, ignoring a second OrderPlaced", event.order_id,
                     existing.text(0));
        existing.reset();
        return {};
    }
    existing.reset();

    const bool enough = placed.amount_cents <= config_.limit_cents;
    db_.prepare("INSERT INTO payments (order_id, amount_cents, status) VALUES (?, ?, ?)")
        .bind(event.order_id, placed.amount_cents, enough ? "verified" : "failed")
        .run();
    if (!enough) {
        return {events::derive(
            event, events::PaymentFailed{kInsufficientFunds, placed.amount_cents, placed.customer},
            now)};
    }
    return {events::derive(event,
                           events::PaymentVerified{placed.item, placed.quantity,
                                                   placed.amount_cents, placed.customer},
                           now)};
}

std::vector<Event> PaymentService::on_out_of_stock(const Event& event,
                                                   const events::OutOfStock& shortage,
                                                   const std::string& now) {
    auto& charged = db_.prepare("SELECT amount_cents, status FROM payments WHERE order_id = ?");
    if (!charged.bind(event.order_id).step()) {
        charged.reset();
        // Inventory only answers a PaymentVerified of ours: this one has no such cause.
        throw service::PoisonEvent("OutOfStock for an order this service never charged; there "
                                   "is nothing to refund");
    }
    const auto amount = charged.int64(0);
    const auto status = charged.text(1);
    charged.reset();
    if (status == "refunded") {
        spdlog::warn("order {}: already refunded, ignoring a second OutOfStock", event.order_id);
        return {};
    }
    if (status != "verified") {
        throw service::PoisonEvent("OutOfStock for an order whose payment " + status +
                                   "; only a verified payment is refunded");
    }
    db_.prepare("UPDATE payments SET status = 'refunded' WHERE order_id = ?")
        .bind(event.order_id)
        .run();
    return {events::derive(event, events::PaymentRefunded{amount, shortage.reason}, now)};
}

}  // namespace op::payment
