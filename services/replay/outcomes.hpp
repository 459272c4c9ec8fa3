// What a log says happened, per order and per item: the basis of replay's comparison between
// a recorded log and the same orders run again. Pure functions over events.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "op/events/chain.hpp"
#include "op/events/event.hpp"

namespace op::replay {

struct LogOutcomes {
    std::vector<std::string> order_ids;  // in the order their OrderPlaced appear
    std::map<std::string, events::OrderChain> orders;
    std::map<std::string, std::int64_t> final_stock;  // last level inventory reported per item

    void apply(const events::Event& event);
};

struct Difference {
    std::string order_id;  // empty for a stock difference
    std::string what;      // "success" vs "failed: Insufficient funds", or an item's stock
    std::string recorded;
    std::string replayed;
};

// Compares the orders of `recorded` with the same orders in `replayed`, and the final stock.
std::vector<Difference> compare(const LogOutcomes& recorded, const LogOutcomes& replayed);

}  // namespace op::replay
