// Many small messages in one frame: a live channel's events, the publish endpoint's "PUBS"
// and its "ACKS" answer.
//
// With CurveZMQ every frame is encrypted by its sender and decrypted by its receiver (once per
// subscriber on the live feed), and ZeroMQ pays a message and a wake-up per frame. At 2,500
// orders/s that per-frame work was the largest single cost of the whole system (a fifth of
// both cores in libsodium, the profile in docs/PERFORMANCE.md). N events in one frame cost one
// of each, not N. The records are text, like every frame:
//   <label> ' ' <body byte length> '\n' <body>      repeated
// The label is the event's seq on the live feed, a publisher's token on the publish endpoint;
// it holds no space or newline. The body is any bytes.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace op::bus {

inline void append_record(std::string& records, std::string_view label, std::string_view body) {
    records.append(label);
    records.push_back(' ');
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, body.size());
    records.append(digits, end);
    records.push_back('\n');
    records.append(body);
}

// Calls visit(label, body) for each record, in order. Returns false (having visited the
// records before it) at the first malformed one.
template <typename Visit>
bool parse_records(std::string_view records, Visit&& visit) {
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

// How many records the frame holds, if every one of them is well formed: checked before any
// is acted on.
inline std::optional<std::size_t> count_records(std::string_view records) {
    std::size_t count = 0;
    if (!parse_records(records, [&](std::string_view, std::string_view) { ++count; })) {
        return std::nullopt;
    }
    return count;
}

}  // namespace op::bus
