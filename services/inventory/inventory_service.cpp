#include "inventory_service.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace op::inventory {

using events::Event;

InitialStock parse_initial_stock(std::string_view json_text) {
    InitialStock out;
    auto j = nlohmann::json::parse(json_text, nullptr, false);
    if (j.is_discarded()) {
        out.error = "is not valid JSON";
        return out;
    }
    if (!j.is_object()) {
        out.error = "must be a JSON object of item names to counts, like {\"phone\": 10}";
        return out;
    }
    for (const auto& [item, count] : j.items()) {
        if (item.empty() || !count.is_number_integer() || count.get<std::int64_t>() < 0) {
            out.error = "item \"" + item + "\" must have a non-negative integer count";
            out.items.clear();
            return out;
        }
        out.items[item] = count.get<std::int64_t>();
    }
    return out;
}

InventoryService::InventoryService(store::Db& db) : db_(db) {
    db_.exec(
        "CREATE TABLE IF NOT EXISTS stock ("
        " item TEXT PRIMARY KEY,"
        " available INTEGER NOT NULL CHECK (available >= 0),"
        " reserved INTEGER NOT NULL CHECK (reserved >= 0));"
        "CREATE TABLE IF NOT EXISTS reservations ("
        " order_id TEXT PRIMARY KEY,"
        " item TEXT NOT NULL,"
        " quantity INTEGER NOT NULL,"
        " outcome TEXT NOT NULL CHECK (outcome IN ('reserved', 'refused')))");
}

bool InventoryService::seed(const std::map<std::string, std::int64_t>& initial) {
    auto& count = db_.prepare("SELECT COUNT(*) FROM stock");
    count.bind().step();
    const bool empty = count.int64(0) == 0;
    count.reset();
    if (!empty) return false;
    store::Transaction tx(db_);
    for (const auto& [item, available] : initial) {
        db_.prepare("INSERT INTO stock (item, available, reserved) VALUES (?, ?, 0)")
            .bind(item, available)
            .run();
    }
    tx.commit();
    return true;
}

std::vector<events::EventType> InventoryService::topics() {
    return {events::EventType::PaymentVerified};
}

std::optional<StockLevel> InventoryService::stock(const std::string& item) {
    auto& q = db_.prepare("SELECT available, reserved FROM stock WHERE item = ?");
    std::optional<StockLevel> out;
    if (q.bind(item).step()) out = StockLevel{q.int64(0), q.int64(1)};
    q.reset();
    return out;
}

std::map<std::string, StockLevel> InventoryService::all_stock() {
    std::map<std::string, StockLevel> out;
    auto& q = db_.prepare("SELECT item, available, reserved FROM stock ORDER BY item");
    q.bind();
    while (q.step()) out[q.text(0)] = StockLevel{q.int64(1), q.int64(2)};
    return out;
}

std::vector<Event> InventoryService::handle(const Event& event, const std::string& now) {
    const auto* paid = event.as<events::PaymentVerified>();
    if (paid == nullptr) return {};

    auto& seen = db_.prepare("SELECT outcome FROM reservations WHERE order_id = ?");
    if (seen.bind(event.order_id).step()) {
        spdlog::warn("order {}: already {}, ignoring a second PaymentVerified", event.order_id,
                     seen.text(0));
        seen.reset();
        return {};
    }
    seen.reset();

    auto record = [&](const char* outcome) {
        db_.prepare("INSERT INTO reservations (order_id, item, quantity, outcome) "
                    "VALUES (?, ?, ?, ?)")
            .bind(event.order_id, paid->item, paid->quantity, outcome)
            .run();
    };

    const auto level = stock(paid->item);
    if (!level) {
        record("refused");
        return {events::derive(
            event, events::OutOfStock{paid->item, paid->quantity, 0, kUnknownItem, paid->customer},
            now)};
    }
    if (level->available < paid->quantity) {
        record("refused");
        return {events::derive(event,
                               events::OutOfStock{paid->item, paid->quantity, level->available,
                                                  kOutOfStock, paid->customer},
                               now)};
    }
    db_.prepare("UPDATE stock SET available = available - ?, reserved = reserved + ? "
                "WHERE item = ?")
        .bind(paid->quantity, paid->quantity, paid->item)
        .run();
    record("reserved");
    return {events::derive(event,
                           events::StockReserved{paid->item, paid->quantity,
                                                 level->available - paid->quantity,
                                                 paid->customer},
                           now)};
}

}  // namespace op::inventory
