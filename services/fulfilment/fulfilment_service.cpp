#include "fulfilment_service.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "op/events/ids.hpp"

namespace op::fulfilment {

using events::Event;

FulfilmentService::FulfilmentService(store::Db& db) : db_(db) {
    db_.exec(
        "CREATE TABLE IF NOT EXISTS shipments ("
        " order_id TEXT PRIMARY KEY,"
        " tracking_id TEXT NOT NULL,"
        " item TEXT NOT NULL,"
        " quantity INTEGER NOT NULL)");
}

std::vector<events::EventType> FulfilmentService::topics() {
    return {events::EventType::StockReserved};
}

std::vector<Event> FulfilmentService::handle(const Event& event, const std::string& now) {
    const auto* reserved = event.as<events::StockReserved>();
    if (reserved == nullptr) return {};

    auto& shipped = db_.prepare("SELECT tracking_id FROM shipments WHERE order_id = ?");
    if (shipped.bind(event.order_id).step()) {
        spdlog::warn("order {}: already shipped as {}, ignoring a second StockReserved",
                     event.order_id, shipped.text(0));
        shipped.reset();
        return {};
    }
    shipped.reset();

    std::string tracking = "TRK-" + events::derived_id(event.id, "tracking").substr(0, 12);
    std::transform(tracking.begin(), tracking.end(), tracking.begin(), ::toupper);
    db_.prepare("INSERT INTO shipments (order_id, tracking_id, item, quantity) VALUES (?, ?, ?, ?)")
        .bind(event.order_id, tracking, reserved->item, reserved->quantity)
        .run();
    return {events::derive(
        event, events::Shipped{reserved->item, reserved->quantity, tracking, reserved->customer},
        now)};
}

}  // namespace op::fulfilment
