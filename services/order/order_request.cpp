#include "order_request.hpp"

#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "op/events/money.hpp"

namespace op::order {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxItemLength = events::limits::kMaxIdLength;
constexpr std::size_t kMaxCustomerLength = events::limits::kMaxTextLength;
constexpr std::int64_t kMaxQuantity = events::limits::kMaxQuantity;

// A SAX handler that builds the document like json::parse does, and also remembers the
// source text of every top-level number, which the DOM would have rounded into a double.
class NumberTextCapture {
public:
    explicit NumberTextCapture(json& root) : dom_(root, false) {}

    std::map<std::string, std::string> number_text;

    bool null() { return dom_.null(); }
    bool boolean(bool v) { return dom_.boolean(v); }
    bool number_integer(json::number_integer_t v) { return remember_text(std::to_string(v)), dom_.number_integer(v); }
    bool number_unsigned(json::number_unsigned_t v) { return remember_text(std::to_string(v)), dom_.number_unsigned(v); }
    bool number_float(json::number_float_t v, const json::string_t& s) {
        remember_text(s);
        return dom_.number_float(v, s);
    }
    bool string(json::string_t& v) { return dom_.string(v); }
    bool binary(json::binary_t& v) { return dom_.binary(v); }
    bool start_object(std::size_t n) { ++depth_; return dom_.start_object(n); }
    bool end_object() { --depth_; return dom_.end_object(); }
    bool start_array(std::size_t n) { ++depth_; return dom_.start_array(n); }
    bool end_array() { --depth_; return dom_.end_array(); }
    bool key(json::string_t& k) {
        if (depth_ == 1) last_key_ = k;
        return dom_.key(k);
    }
    bool parse_error(std::size_t pos, const std::string& token,
                     const nlohmann::detail::exception& e) {
        error_ = e.what();
        (void)pos;
        (void)token;
        return false;
    }
    const std::string& error() const { return error_; }

private:
    void remember_text(const std::string& s) {
        if (depth_ == 1) number_text[last_key_] = s;
    }

    nlohmann::detail::json_sax_dom_parser<json> dom_;
    int depth_ = 0;
    std::string last_key_;
    std::string error_;
};

ParsedRequest invalid(std::string message) { return {std::nullopt, {422, std::move(message)}}; }

}  // namespace

ParsedRequest parse_order_request(std::string_view body) {
    json root;
    NumberTextCapture capture(root);
    const bool parsed = json::sax_parse(body, &capture, json::input_format_t::json, /*strict=*/true);
    if (!parsed) {
        return {std::nullopt, {400, "body is not valid JSON: send an object like "
                                    "{\"item\":\"phone\",\"amount\":1000}"}};
    }
    if (!root.is_object()) {
        return {std::nullopt,
                {400, "body must be a JSON object like {\"item\":\"phone\",\"amount\":1000}"}};
    }

    for (const auto& [key, value] : root.items()) {
        if (key != "item" && key != "amount" && key != "quantity" && key != "customer") {
            return invalid(fmt::format(
                "unknown field \"{}\" (accepted: item, amount, quantity, customer)", key));
        }
    }

    OrderRequest order;
    auto item = root.find("item");
    if (item == root.end()) return invalid("field \"item\" is missing");
    if (!item->is_string()) return invalid("field \"item\" must be a string");
    order.item = item->get<std::string>();
    if (order.item.empty()) return invalid("field \"item\" must not be empty");
    if (order.item.size() > kMaxItemLength) {
        return invalid(fmt::format("field \"item\" is longer than {} characters", kMaxItemLength));
    }

    auto amount = root.find("amount");
    if (amount == root.end()) return invalid("field \"amount\" is missing");
    if (!amount->is_number()) {
        return invalid("field \"amount\" must be a JSON number like 1000 or 19.99");
    }
    const auto money = events::parse_amount(capture.number_text["amount"]);
    if (!money.cents) {
        return invalid(fmt::format("field \"amount\" {}", money.error == "must be positive"
                                                               ? "must be a positive number"
                                                               : money.error));
    }
    order.amount_cents = *money.cents;

    if (auto quantity = root.find("quantity"); quantity != root.end()) {
        if (!quantity->is_number_integer() || quantity->get<std::int64_t>() < 1 ||
            (quantity->is_number_unsigned() &&
             quantity->get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxQuantity)) ||
            quantity->get<std::int64_t>() > kMaxQuantity) {
            return invalid(
                fmt::format("field \"quantity\" must be a positive integer up to {}", kMaxQuantity));
        }
        order.quantity = quantity->get<std::int64_t>();
    }

    if (auto customer = root.find("customer"); customer != root.end()) {
        if (!customer->is_string()) return invalid("field \"customer\" must be a string");
        order.customer = customer->get<std::string>();
        if (order.customer.size() > kMaxCustomerLength) {
            return invalid(fmt::format("field \"customer\" is longer than {} characters",
                                       kMaxCustomerLength));
        }
    }
    return {std::move(order), {0, {}}};
}

}  // namespace op::order
