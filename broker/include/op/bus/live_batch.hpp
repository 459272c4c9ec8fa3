// The live feed's batch frame: every event of one broker group in a single frame.
//
// With CurveZMQ every frame is encrypted once per subscriber and decrypted by each, and at
// 2,500 orders/s that per-frame work was the largest single cost of the whole system (a fifth
// of both cores in libsodium, the profile in docs/PERFORMANCE.md). A group of N events now
// costs each subscriber one frame, not N. The records are text, like every frame:
//   <topic> ' ' <json byte length> '\n' <json>      repeated, in seq order
// and the first record's seq comes in the frame before (protocol.hpp).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace op::bus {

inline void append_live_record(std::string& records, std::string_view topic,
                               std::string_view json) {
    records.append(topic);
    records.push_back(' ');
    records.append(std::to_string(json.size()));
    records.push_back('\n');
    records.append(json);
}

// Calls visit(topic, json) for each record, in order. Returns false (having visited the
// records before it) at the first malformed one: the subscriber then sees a gap and repairs
// it from the replay endpoint.
template <typename Visit>
bool parse_live_records(std::string_view records, Visit&& visit) {
    while (!records.empty()) {
        const auto space = records.find(' ');
        const auto newline = records.find('\n');
        if (space == 0 || space == std::string_view::npos || newline == std::string_view::npos ||
            newline < space) {
            return false;
        }
        std::size_t length = 0;
        const auto digits = records.substr(space + 1, newline - space - 1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
        if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty() ||
            length > records.size() - newline - 1) {
            return false;
        }
        visit(records.substr(0, space), records.substr(newline + 1, length));
        records.remove_prefix(newline + 1 + length);
    }
    return true;
}

}  // namespace op::bus
