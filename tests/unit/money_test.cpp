// Unit tests of exact money: decimal JSON number text -> integer cents, and cents -> text.
#include "op/events/money.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using op::events::Cents;
using op::events::format_cents;
using op::events::kMaxCents;
using op::events::parse_amount;

void expect_cents(const std::string& text, Cents expected) {
    CAPTURE(text);
    const auto parsed = parse_amount(text);
    REQUIRE_MESSAGE(parsed.cents.has_value(), parsed.error);
    CHECK(*parsed.cents == expected);
    CHECK(parsed.error.empty());
}

void expect_refused(const std::string& text, const std::string& error) {
    CAPTURE(text);
    const auto parsed = parse_amount(text);
    CHECK_FALSE(parsed.cents.has_value());
    CHECK(parsed.error == error);
}

}  // namespace

TEST_CASE("parse_amount: whole amounts") {
    expect_cents("1000", 100000);
    expect_cents("5000", 500000);
    expect_cents("1", 100);
    expect_cents("007", 700);
}

TEST_CASE("parse_amount: decimals are exact, never through a double") {
    expect_cents("5000.01", 500001);
    expect_cents("10.5", 1050);
    expect_cents("10.50", 1050);
    expect_cents("10.500", 1050);
    expect_cents("0.01", 1);
    expect_cents("0.1", 10);
    expect_cents("19.99", 1999);
    expect_cents("0.29", 29);  // 0.29 * 100 is 28.999... as a double
    expect_cents("1.15", 115);
    expect_cents("4999.99", 499999);
}

TEST_CASE("parse_amount: exponents") {
    expect_cents("1e3", 100000);
    expect_cents("1E3", 100000);
    expect_cents("1e+3", 100000);
    expect_cents("1.25E2", 12500);
    expect_cents("1e-2", 1);
    expect_cents("12.5e-1", 125);
    expect_cents("100e-4", 1);
    expect_cents("0.0001e4", 100);
}

TEST_CASE("parse_amount: kMaxCents is the largest amount accepted") {
    expect_cents("10000000000", kMaxCents);
    expect_cents("9999999999.99", kMaxCents - 1);
    expect_cents("1e10", kMaxCents);
    expect_refused("10000000000.01", "is too large");
    expect_refused("99999999999999", "is too large");
    expect_refused("1e11", "is too large");
}

TEST_CASE("parse_amount: refusals say why") {
    expect_refused("10.005", "has more than two decimal places");
    expect_refused("0.001", "has more than two decimal places");
    expect_refused("1e-3", "has more than two decimal places");
    expect_refused("0", "must be positive");
    expect_refused("0.00", "must be positive");
    expect_refused("0e5", "must be positive");
    expect_refused("-5", "must be positive");
    expect_refused("-0.01", "must be positive");
    expect_refused("abc", "is not a number");
    expect_refused("", "is not a number");
    expect_refused(".", "is not a number");
    expect_refused("1e", "is not a number");
    expect_refused("1e+", "is not a number");
    expect_refused("12abc", "is not a number");
    expect_refused("1 ", "is not a number");
    expect_refused("1e400", "is too large");
    expect_refused("1e999999999", "is too large");
    expect_refused(std::string(500, '9'), "is too large");
}

TEST_CASE("parse_amount: long runs of zeros do not overflow") {
    expect_cents("0." + std::string(300, '0') + "1e301", 100);  // 1e-301 * 1e301 = 1.00
    expect_cents(std::string(400, '0') + "12.34", 1234);
    expect_cents("12.34" + std::string(400, '0'), 1234);
    expect_refused("0." + std::string(300, '0') + "1", "has more than two decimal places");
}

TEST_CASE("format_cents") {
    CHECK(format_cents(123456) == "1234.56");
    CHECK(format_cents(5) == "0.05");
    CHECK(format_cents(0) == "0.00");
    CHECK(format_cents(100) == "1.00");
    CHECK(format_cents(500001) == "5000.01");
    CHECK(format_cents(kMaxCents) == "10000000000.00");
    CHECK(format_cents(-1050) == "-10.50");
}

TEST_CASE("format_cents and parse_amount round trip") {
    for (Cents c : {Cents{1}, Cents{9}, Cents{10}, Cents{99}, Cents{100}, Cents{123456},
                    Cents{500001}, kMaxCents}) {
        CAPTURE(c);
        const auto parsed = parse_amount(format_cents(c));
        REQUIRE(parsed.cents.has_value());
        CHECK(*parsed.cents == c);
    }
}
