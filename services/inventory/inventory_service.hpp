// Inventory: reserves stock for paid orders, or reports OutOfStock (short, or an item it does
// not carry). State in SQLite: stock per item (available + reserved, which always sum to the
// initial stock) and one reservation row per order, so no order is reserved twice.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "op/events/event.hpp"
#include "op/store/db.hpp"

namespace op::inventory {

inline constexpr const char* kOutOfStock = events::reason::kOutOfStock;
inline constexpr const char* kUnknownItem = events::reason::kUnknownItem;

struct StockLevel {
    std::int64_t available = 0;
    std::int64_t reserved = 0;
};

struct InitialStock {
    std::map<std::string, std::int64_t> items;
    std::string error;  // set when the file could not be used
};

// Parses {"phone": 100, ...}: item names to non-negative integer counts.
InitialStock parse_initial_stock(std::string_view json_text);

class InventoryService {
public:
    explicit InventoryService(store::Db& db);

    // Seeds the stock table when it is empty (a new data dir); returns false if it already had
    // stock, which then wins: the log and the database are the truth after the first start.
    bool seed(const std::map<std::string, std::int64_t>& initial);

    static std::vector<events::EventType> topics();
    std::vector<events::Event> handle(const events::Event& event, const std::string& now);

    std::optional<StockLevel> stock(const std::string& item);
    std::map<std::string, StockLevel> all_stock();

private:
    store::Db& db_;
};

}  // namespace op::inventory
