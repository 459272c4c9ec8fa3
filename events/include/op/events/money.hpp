// Exact money: decimal text <-> integer cents. Amounts arrive as JSON numbers; their text is
// parsed digit by digit, never through a double, so 5000.01 stays 500001 cents.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "op/events/event.hpp"

namespace op::events {

// Largest amount accepted: 10^12 cents, far below int64 overflow in any sum we make.
inline constexpr Cents kMaxCents = 1'000'000'000'000;

struct MoneyParse {
    std::optional<Cents> cents;
    std::string error;  // set when cents is empty
};

// Parses a JSON number's text ("1000", "10.5", "1.25e3") into cents. Refuses more than two
// decimal places of value (10.005), negatives, zero, and values above kMaxCents.
MoneyParse parse_amount(std::string_view text);

// 123456 -> "1234.56"
std::string format_cents(Cents cents);

}  // namespace op::events
