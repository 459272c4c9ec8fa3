#include "outcomes.hpp"

namespace op::replay {

void LogOutcomes::apply(const events::Event& e) {
    if (e.type() == events::EventType::OrderPlaced && !orders.contains(e.order_id)) {
        order_ids.push_back(e.order_id);
    }
    orders[e.order_id].apply(e);
    if (const auto* reserved = e.as<events::StockReserved>()) {
        final_stock[reserved->item] = reserved->remaining;
    } else if (const auto* shortage = e.as<events::OutOfStock>()) {
        if (shortage->reason != events::reason::kUnknownItem) {
            final_stock[shortage->item] = shortage->available;
        }
    }
}

std::vector<Difference> compare(const LogOutcomes& recorded, const LogOutcomes& replayed) {
    std::vector<Difference> out;
    for (const auto& id : recorded.order_ids) {
        const std::string before = recorded.orders.at(id).outcome();
        auto it = replayed.orders.find(id);
        const std::string after = it == replayed.orders.end() ? "missing" : it->second.outcome();
        if (before != after) out.push_back({id, "outcome", before, after});
    }
    for (const auto& [item, level] : recorded.final_stock) {
        auto it = replayed.final_stock.find(item);
        const std::string after = it == replayed.final_stock.end() ? "untouched"
                                                                   : std::to_string(it->second);
        if (after != std::to_string(level)) {
            out.push_back({"", "stock of " + item, std::to_string(level), after});
        }
    }
    return out;
}

}  // namespace op::replay
