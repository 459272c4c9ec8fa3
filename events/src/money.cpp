#include "op/events/money.hpp"

#include <cctype>
#include <cstdint>

#include <fmt/format.h>

namespace op::events {

MoneyParse parse_amount(std::string_view text) {
    // JSON number grammar: -?int(.frac)?([eE][+-]?exp)?. We collect the significant digits
    // and a decimal exponent, then scale to cents exactly.
    auto fail = [](std::string msg) { return MoneyParse{std::nullopt, std::move(msg)}; };
    std::size_t i = 0;
    if (i < text.size() && text[i] == '-') return fail("must be positive");
    std::string digits;
    int exponent = 0;
    bool any_digit = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        digits += text[i++];
        any_digit = true;
    }
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            digits += text[i++];
            --exponent;
            any_digit = true;
        }
    }
    if (!any_digit) return fail("is not a number");
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        bool negative = false;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
        int e = 0;
        bool exp_digit = false;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            if (e < 100000) e = e * 10 + (text[i] - '0');
            ++i;
            exp_digit = true;
        }
        if (!exp_digit) return fail("is not a number");
        exponent += negative ? -e : e;
    }
    if (i != text.size()) return fail("is not a number");

    // Strip leading zeros, then trailing zeros into the exponent: 10.500 is 1050 cents.
    std::size_t first = digits.find_first_not_of('0');
    if (first == std::string::npos) return fail("must be positive");
    digits.erase(0, first);
    while (!digits.empty() && digits.back() == '0') {
        digits.pop_back();
        ++exponent;
    }
    const int cents_exponent = exponent + 2;
    if (cents_exponent < 0) return fail("has more than two decimal places");
    if (static_cast<int>(digits.size()) + cents_exponent > 13) return fail("is too large");
    Cents cents = 0;
    for (char c : digits) cents = cents * 10 + (c - '0');
    for (int k = 0; k < cents_exponent; ++k) cents *= 10;
    if (cents > kMaxCents) return fail("is too large");
    return MoneyParse{cents, {}};
}

std::string format_cents(Cents cents) {
    const char* sign = cents < 0 ? "-" : "";
    const std::uint64_t magnitude =
        cents < 0 ? 0 - static_cast<std::uint64_t>(cents) : static_cast<std::uint64_t>(cents);
    return fmt::format("{}{}.{:02}", sign, magnitude / 100, magnitude % 100);
}

}  // namespace op::events
