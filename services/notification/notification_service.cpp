#include "notification_service.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace op::notification {

using events::Event;

NotificationService::NotificationService(store::Db& db) : db_(db) {
    db_.exec(
        "CREATE TABLE IF NOT EXISTS notifications ("
        " order_id TEXT PRIMARY KEY,"
        " outcome TEXT NOT NULL,"
        " reason TEXT NOT NULL)");
}

std::vector<events::EventType> NotificationService::topics() {
    return {events::EventType::Shipped, events::EventType::PaymentFailed,
            events::EventType::OutOfStock};
}

std::vector<Event> NotificationService::handle(const Event& event, const std::string& now) {
    events::CustomerNotified message;
    if (const auto* shipped = event.as<events::Shipped>()) {
        message = {"success", "", shipped->customer};
    } else if (const auto* refused = event.as<events::PaymentFailed>()) {
        message = {"failed", refused->reason, refused->customer};
    } else if (const auto* shortage = event.as<events::OutOfStock>()) {
        message = {"failed", shortage->reason, shortage->customer};
    } else {
        return {};
    }

    auto& sent = db_.prepare("SELECT outcome FROM notifications WHERE order_id = ?");
    if (sent.bind(event.order_id).step()) {
        spdlog::warn("order {}: customer already notified ({}), ignoring {}", event.order_id,
                     sent.text(0), event.type_name());
        sent.reset();
        return {};
    }
    sent.reset();
    db_.prepare("INSERT INTO notifications (order_id, outcome, reason) VALUES (?, ?, ?)")
        .bind(event.order_id, message.outcome, message.reason)
        .run();
    return {events::derive(event, message, now)};
}

std::string NotificationService::outbox_line(const Event& notified) {
    const auto* n = notified.as<events::CustomerNotified>();
    if (n == nullptr) return {};
    // The notification's event id travels along: a crash between the broker's ack and the
    // checkpoint repeats the line, and whoever sends the message drops the repeat by this id.
    nlohmann::json line = {{"ts", notified.ts},
                           {"notification_id", notified.id},
                           {"order_id", notified.order_id},
                           {"customer", n->customer},
                           {"outcome", n->outcome}};
    if (!n->reason.empty()) line["reason"] = n->reason;
    return line.dump();
}

}  // namespace op::notification
