// Unit tests of the POST /place-order and POST /orders body: exact money, 400 for malformed
// JSON, 422 naming the field for well-formed but invalid bodies, and no crash on garbage.
#include "order_request.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

namespace {

using op::order::parse_order_request;
using op::order::ParsedRequest;

ParsedRequest accepted(const std::string& body) {
    CAPTURE(body);
    ParsedRequest r;
    REQUIRE_NOTHROW(r = parse_order_request(body));
    REQUIRE_MESSAGE(r.order.has_value(), r.error.message);
    CHECK(r.error.http_status == 0);
    CHECK(r.error.message.empty());
    return r;
}

void refused(const std::string& body, int status, const std::string& needle = "") {
    CAPTURE(body);
    ParsedRequest r;
    REQUIRE_NOTHROW(r = parse_order_request(body));
    CHECK_FALSE(r.order.has_value());
    CHECK(r.error.http_status == status);
    CAPTURE(r.error.message);
    CHECK_FALSE(r.error.message.empty());
    if (!needle.empty()) CHECK(r.error.message.find(needle) != std::string::npos);
}

}  // namespace

TEST_CASE("order request: a valid minimal body") {
    const auto r = accepted(R"({"item":"phone","amount":1000})");
    CHECK(r.order->item == "phone");
    CHECK(r.order->amount_cents == 100000);
    CHECK(r.order->quantity == 1);
    CHECK(r.order->customer.empty());
}

TEST_CASE("order request: quantity and customer") {
    const auto r = accepted(R"({"item":"laptop","amount":19.99,"quantity":3,"customer":"alice"})");
    CHECK(r.order->item == "laptop");
    CHECK(r.order->amount_cents == 1999);
    CHECK(r.order->quantity == 3);
    CHECK(r.order->customer == "alice");

    CHECK(accepted(R"({"item":"x","amount":1,"quantity":1000000})").order->quantity == 1000000);
    CHECK(accepted(R"({"customer":"","item":"x","amount":1})").order->customer.empty());
    // Whitespace and field order do not matter.
    const auto spaced = accepted(" \n{ \"amount\" : 5 ,\t\"item\" : \"phone\" }\n ");
    CHECK(spaced.order->amount_cents == 500);
}

TEST_CASE("order request: amounts are exact cents") {
    CHECK(accepted(R"({"item":"phone","amount":5000.01})").order->amount_cents == 500001);
    CHECK(accepted(R"({"item":"phone","amount":5000})").order->amount_cents == 500000);
    CHECK(accepted(R"({"item":"phone","amount":0.29})").order->amount_cents == 29);
    CHECK(accepted(R"({"item":"phone","amount":10.50})").order->amount_cents == 1050);
    CHECK(accepted(R"({"item":"phone","amount":1e3})").order->amount_cents == 100000);
    CHECK(accepted(R"({"item":"phone","amount":1.25E2})").order->amount_cents == 12500);
    CHECK(accepted(R"({"item":"phone","amount":0.01})").order->amount_cents == 1);
}

TEST_CASE("order request: 10.005 is refused with 422 naming the decimals") {
    refused(R"({"item":"phone","amount":10.005})", 422, "amount");
    refused(R"({"item":"phone","amount":10.005})", 422, "decimal");
    refused(R"({"item":"phone","amount":1e-3})", 422, "decimal");
}

TEST_CASE("order request: malformed JSON is 400") {
    refused("", 400, "JSON");
    refused("{", 400, "JSON");
    refused("not json", 400, "JSON");
    refused(R"({"item":"phone","amount":1000)", 400);
    refused(R"({"item":"phone",,"amount":1000})", 400);
    refused(R"({'item':'phone','amount':1000})", 400);
    refused(R"({"item":"phone","amount":01})", 400);
    refused(R"({"item":"phone","amount":NaN})", 400);
    refused(R"({"item":"ph\xone","amount":1})", 400);
    refused("{\"item\":\"ph\xff\",\"amount\":1}", 400);
}

TEST_CASE("order request: a top-level array, number, string or null is 400") {
    refused("[]", 400, "object");
    refused(R"([{"item":"phone","amount":1000}])", 400, "object");
    refused("1000", 400, "object");
    refused(R"("phone")", 400, "object");
    refused("null", 400, "object");
    refused("true", 400, "object");
}

// Only one JSON value is a body: trailing bytes are malformed, not ignored.
TEST_CASE("order request: trailing bytes after the object are malformed JSON (400)") {
    refused(R"({"item":"phone","amount":1000}garbage)", 400);
    refused(R"({"item":"phone","amount":1000}{"item":"laptop","amount":1})", 400);
    refused(R"({"item":"phone","amount":1000}])", 400);
}

TEST_CASE("order request: missing item or amount is 422 naming the field") {
    refused(R"({"amount":1000})", 422, "\"item\" is missing");
    refused(R"({"item":"phone"})", 422, "\"amount\" is missing");
    refused("{}", 422, "missing");
    refused(R"({"item":null,"amount":1000})", 422, "item");
    refused(R"({"item":"phone","amount":null})", 422, "amount");
}

TEST_CASE("order request: mistyped fields are 422 naming the field") {
    refused(R"({"item":42,"amount":1000})", 422, "\"item\" must be a string");
    refused(R"({"item":["phone"],"amount":1000})", 422, "item");
    refused(R"({"item":"","amount":1000})", 422, "\"item\" must not be empty");
    refused(R"({"item":"phone","amount":"1000"})", 422, "\"amount\" must be a JSON number");
    refused(R"({"item":"phone","amount":true})", 422, "amount");
    refused(R"({"item":"phone","amount":{"value":1}})", 422, "amount");
    refused(R"({"item":"phone","amount":1000,"customer":7})", 422, "\"customer\" must be a string");
    refused(R"({"item":"phone","amount":1000,"customer":null})", 422, "customer");
}

TEST_CASE("order request: negative or zero amounts are 422") {
    refused(R"({"item":"phone","amount":-5})", 422, "amount");
    refused(R"({"item":"phone","amount":-5})", 422, "positive");
    refused(R"({"item":"phone","amount":-0.01})", 422, "positive");
    refused(R"({"item":"phone","amount":0})", 422, "positive");
    refused(R"({"item":"phone","amount":0.00})", 422, "positive");
    refused(R"({"item":"phone","amount":-0})", 422, "amount");
    refused(R"({"item":"phone","amount":99999999999999})", 422, "too large");
}

TEST_CASE("order request: quantity must be a positive integer up to 10^6") {
    for (const char* q : {"0", "-1", "1.5", "\"2\"", "10000000", "1e2", "true", "null", "[1]",
                          "18446744073709551615", "-9223372036854775808"}) {
        CAPTURE(q);
        refused(std::string(R"({"item":"phone","amount":1000,"quantity":)") + q + "}", 422,
                "\"quantity\"");
    }
}

TEST_CASE("order request: unknown fields are 422 naming the field") {
    refused(R"({"item":"phone","amount":1000,"price":1000})", 422, "unknown field \"price\"");
    refused(R"({"item":"phone","amount":1000,"Item":"x"})", 422, "\"Item\"");
    refused(R"({"item":"phone","amount":1000,"":1})", 422, "unknown field");
}

TEST_CASE("order request: length limits on item and customer") {
    const std::string ok_item(128, 'i');
    CHECK(accepted(R"({"item":")" + ok_item + R"(","amount":1})").order->item == ok_item);
    refused(R"({"item":")" + std::string(129, 'i') + R"(","amount":1})", 422,
            "\"item\" is longer than 128");
    refused(R"({"item":")" + std::string(1'000'000, 'i') + R"(","amount":1})", 422, "item");
    const std::string ok_customer(256, 'c');
    CHECK(accepted(R"({"item":"x","amount":1,"customer":")" + ok_customer + "\"}")
              .order->customer == ok_customer);
    refused(R"({"item":"x","amount":1,"customer":")" + std::string(257, 'c') + "\"}", 422,
            "\"customer\" is longer than 256");
}

TEST_CASE("order request: a nested number does not stand in for the top-level amount") {
    // The amount text is captured only at depth 1; nested objects are refused anyway.
    refused(R"({"item":"phone","amount":[10.005]})", 422, "amount");
    refused(R"({"item":{"amount":1},"amount":10.005})", 422);
}

TEST_CASE("order request: deeply nested garbage does not crash") {
    refused(std::string(10000, '['), 400);
    refused(std::string(10000, '{'), 400);
    refused(std::string(10000, '[') + std::string(10000, ']'), 400, "object");
    std::string deep_amount = R"({"item":"phone","amount":)" + std::string(5000, '[') + "1" +
                              std::string(5000, ']') + "}";
    refused(deep_amount, 422, "amount");
    std::string deep_object = "{\"item\":";
    for (int i = 0; i < 5000; ++i) deep_object += "{\"a\":";
    deep_object += "1" + std::string(5000, '}') + ",\"amount\":1}";
    refused(deep_object, 422, "item");
}

TEST_CASE("order request: random bytes never throw") {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> len(0, 200);
    const std::string base = R"({"item":"phone","amount":1000.5,"quantity":2,"customer":"a"})";
    std::uniform_int_distribution<std::size_t> pos(0, base.size() - 1);
    for (int i = 0; i < 500; ++i) {
        std::string s;
        if (i % 2 == 0) {
            s.resize(static_cast<std::size_t>(len(rng)));
            for (char& c : s) c = static_cast<char>(byte(rng));
        } else {
            s = base;
            s[pos(rng)] = static_cast<char>(byte(rng));
        }
        ParsedRequest r;
        CHECK_NOTHROW(r = parse_order_request(s));
        // Exactly one of: an order, or a 400/422 with a message.
        if (r.order) {
            CHECK(r.error.http_status == 0);
            CHECK(r.order->amount_cents > 0);
            CHECK(r.order->quantity >= 1);
            CHECK_FALSE(r.order->item.empty());
        } else {
            CHECK((r.error.http_status == 400 || r.error.http_status == 422));
            CHECK_FALSE(r.error.message.empty());
        }
    }
    for (std::size_t n = 0; n < base.size(); ++n) refused(base.substr(0, n), 400);
}
