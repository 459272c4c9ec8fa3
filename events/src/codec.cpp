#include "op/events/codec.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "op/events/money.hpp"

namespace op::events {
namespace {

using nlohmann::json;

using limits::kMaxIdLength;
using limits::kMaxQuantity;
using limits::kMaxTextLength;
// A dead letter quotes a whole event and a reason that may carry an exception's text.
constexpr std::size_t kMaxDeadLetterReason = 1024;
constexpr std::size_t kMaxDeadLetterEvent = 64u << 10;

// Reads typed fields out of a JSON object, remembering the first problem with its path.
// Later reads after an error are no-ops, so a decoder reads straight through and checks once.
class FieldReader {
public:
    FieldReader(const json& object, std::string prefix)
        : object_(object), prefix_(std::move(prefix)) {}

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }

    std::string text(const char* name, bool required_non_empty, std::size_t max_len) {
        std::string out;
        const json* field = find(name, !required_non_empty);
        if (field == nullptr) return out;
        if (!field->is_string()) return fail(name, "must be a string"), out;
        out = field->get<std::string>();
        if (required_non_empty && out.empty()) return fail(name, "must not be empty"), out;
        if (out.size() > max_len) {
            return fail(name, fmt::format("is longer than {} characters", max_len)), out;
        }
        return out;
    }

    std::int64_t integer(const char* name, std::int64_t min, std::int64_t max,
                         std::optional<std::int64_t> fallback = std::nullopt) {
        const json* field = find(name, fallback.has_value());
        if (field == nullptr) return fallback.value_or(0);
        if (!field->is_number_integer()) return fail(name, "must be an integer"), 0;
        if (field->is_number_unsigned() && field->get<std::uint64_t>() >
                                               static_cast<std::uint64_t>(max)) {
            return fail(name, fmt::format("must be at most {}", max)), 0;
        }
        const auto value = field->get<std::int64_t>();
        if (value < min) return fail(name, fmt::format("must be at least {}", min)), 0;
        if (value > max) return fail(name, fmt::format("must be at most {}", max)), 0;
        return value;
    }

    std::uint64_t unsigned_integer(const char* name) {
        const json* field = find(name, true);
        if (field == nullptr) return 0;
        if (!field->is_number_unsigned()) {
            return fail(name, "must be a non-negative integer"), 0;
        }
        return field->get<std::uint64_t>();
    }

    const json* object(const char* name) {
        const json* field = find(name, false);
        if (field != nullptr && !field->is_object()) {
            fail(name, "must be an object");
            return nullptr;
        }
        return field;
    }

    void fail(const char* name, std::string_view what) {
        if (error_.empty()) error_ = fmt::format("{}{} {}", prefix_, name, what);
    }

private:
    const json* find(const char* name, bool optional) {
        if (!error_.empty()) return nullptr;
        auto it = object_.find(name);
        if (it == object_.end() || it->is_null()) {
            if (!optional) fail(name, "is missing");
            return nullptr;
        }
        return &*it;
    }

    const json& object_;
    std::string prefix_;
    std::string error_;
};

Cents amount(FieldReader& r) { return r.integer("amount_cents", 1, kMaxCents); }
std::int64_t quantity(FieldReader& r) { return r.integer("quantity", 1, kMaxQuantity); }
std::string item(FieldReader& r) { return r.text("item", true, kMaxIdLength); }
std::string customer(FieldReader& r) { return r.text("customer", false, kMaxTextLength); }
std::string reason(FieldReader& r) { return r.text("reason", true, kMaxTextLength); }
std::int64_t stock_level(FieldReader& r, const char* name) {
    return r.integer(name, 0, std::numeric_limits<std::int64_t>::max() / 4);
}

Payload read_payload(EventType type, int version, FieldReader& r) {
    switch (type) {
        case EventType::OrderPlaced: {
            OrderPlaced p;
            p.item = item(r);
            // v1 had no quantity: every order was for one item.
            p.quantity = version == 1 ? r.integer("quantity", 1, kMaxQuantity, 1) : quantity(r);
            p.amount_cents = amount(r);
            p.customer = customer(r);
            return p;
        }
        case EventType::PaymentVerified: {
            PaymentVerified p;
            p.item = item(r);
            p.quantity = quantity(r);
            p.amount_cents = amount(r);
            p.customer = customer(r);
            return p;
        }
        case EventType::PaymentFailed: {
            PaymentFailed p;
            p.reason = reason(r);
            p.amount_cents = amount(r);
            p.customer = customer(r);
            return p;
        }
        case EventType::StockReserved: {
            StockReserved p;
            p.item = item(r);
            p.quantity = quantity(r);
            p.remaining = stock_level(r, "remaining");
            p.customer = customer(r);
            return p;
        }
        case EventType::OutOfStock: {
            OutOfStock p;
            p.item = item(r);
            p.quantity = quantity(r);
            p.available = stock_level(r, "available");
            p.reason = reason(r);
            p.customer = customer(r);
            return p;
        }
        case EventType::PaymentRefunded: {
            PaymentRefunded p;
            p.amount_cents = amount(r);
            p.reason = reason(r);
            return p;
        }
        case EventType::Shipped: {
            Shipped p;
            p.item = item(r);
            p.quantity = quantity(r);
            p.tracking_id = r.text("tracking_id", true, kMaxIdLength);
            p.customer = customer(r);
            return p;
        }
        case EventType::CustomerNotified: {
            CustomerNotified p;
            p.outcome = r.text("outcome", true, 16);
            if (r.ok() && p.outcome != "success" && p.outcome != "failed") {
                r.fail("outcome", "must be \"success\" or \"failed\"");
            }
            p.reason = r.text("reason", false, kMaxTextLength);
            p.customer = customer(r);
            return p;
        }
        case EventType::DeadLetter: {
            DeadLetter p;
            p.service = r.text("service", true, kMaxIdLength);
            p.reason = r.text("reason", true, kMaxDeadLetterReason);
            p.event_seq = r.unsigned_integer("event_seq");
            p.event_type = r.text("event_type", true, 64);
            if (const json* original = r.object("event")) {
                p.event_json = original->dump();
                if (p.event_json.size() > kMaxDeadLetterEvent) {
                    r.fail("event", fmt::format("is larger than {} bytes", kMaxDeadLetterEvent));
                }
            }
            return p;
        }
    }
    return OrderPlaced{};  // unreachable: every enumerator is handled above
}

void put_customer(json& j, const std::string& customer) {
    if (!customer.empty()) j["customer"] = customer;
}

json payload_json(const Payload& payload) {
    json j = json::object();
    std::visit(
        [&](const auto& p) {
            using T = std::decay_t<decltype(p)>;
            if constexpr (std::is_same_v<T, OrderPlaced> || std::is_same_v<T, PaymentVerified>) {
                j["item"] = p.item;
                j["quantity"] = p.quantity;
                j["amount_cents"] = p.amount_cents;
                put_customer(j, p.customer);
            } else if constexpr (std::is_same_v<T, PaymentFailed>) {
                j["reason"] = p.reason;
                j["amount_cents"] = p.amount_cents;
                put_customer(j, p.customer);
            } else if constexpr (std::is_same_v<T, StockReserved>) {
                j["item"] = p.item;
                j["quantity"] = p.quantity;
                j["remaining"] = p.remaining;
                put_customer(j, p.customer);
            } else if constexpr (std::is_same_v<T, OutOfStock>) {
                j["item"] = p.item;
                j["quantity"] = p.quantity;
                j["available"] = p.available;
                j["reason"] = p.reason;
                put_customer(j, p.customer);
            } else if constexpr (std::is_same_v<T, PaymentRefunded>) {
                j["amount_cents"] = p.amount_cents;
                j["reason"] = p.reason;
            } else if constexpr (std::is_same_v<T, Shipped>) {
                j["item"] = p.item;
                j["quantity"] = p.quantity;
                j["tracking_id"] = p.tracking_id;
                put_customer(j, p.customer);
            } else if constexpr (std::is_same_v<T, CustomerNotified>) {
                j["outcome"] = p.outcome;
                if (!p.reason.empty()) j["reason"] = p.reason;
                put_customer(j, p.customer);
            } else if constexpr (std::is_same_v<T, DeadLetter>) {
                j["service"] = p.service;
                j["reason"] = p.reason;
                j["event_seq"] = p.event_seq;
                j["event_type"] = p.event_type;
                // The original travels as an object, so jq reaches into it; an original that is
                // somehow not JSON still travels, as a string inside an object.
                auto original = json::parse(p.event_json, nullptr, false);
                j["event"] = original.is_object() ? std::move(original)
                                                  : json{{"unparsed", p.event_json}};
            }
        },
        payload);
    return j;
}

}  // namespace

json to_json(const Event& event) {
    json j = json::object();
    j["id"] = event.id;
    j["type"] = event.type_name();
    j["order_id"] = event.order_id;
    if (event.seq != 0) j["seq"] = event.seq;
    j["ts"] = event.ts;
    if (!event.causation_id.empty()) j["causation_id"] = event.causation_id;
    j["v"] = current_version(event.type());
    j["data"] = payload_json(event.data);
    return j;
}

Decoded from_json(const json& j) {
    auto fail = [](std::string error) { return Decoded{std::nullopt, std::move(error)}; };
    if (!j.is_object()) return fail("event must be a JSON object");

    FieldReader envelope(j, "");
    const std::string type_text = envelope.text("type", true, 64);
    if (!envelope.ok()) return fail(envelope.error());
    const auto type = parse_type_name(type_text);
    if (!type) return fail(fmt::format("type \"{}\" is not a known event type", type_text));

    Event event;
    event.id = envelope.text("id", true, kMaxIdLength);
    event.order_id = envelope.text("order_id", true, kMaxIdLength);
    event.seq = envelope.unsigned_integer("seq");
    event.ts = envelope.text("ts", true, 64);
    event.causation_id = envelope.text("causation_id", *type != EventType::OrderPlaced,
                                       kMaxIdLength);
    const int version = static_cast<int>(envelope.integer("v", 1, 1000));
    const json* data = envelope.object("data");
    if (!envelope.ok()) return fail(envelope.error());
    if (version > current_version(*type)) {
        return fail(fmt::format("v {} of {} is not supported (this build reads v1 to v{})",
                                version, type_text, current_version(*type)));
    }

    FieldReader fields(*data, "data.");
    event.data = read_payload(*type, version, fields);
    if (!fields.ok()) return fail(fmt::format("{}: {}", type_text, fields.error()));
    // Upcast done: the payload has every field of the current version.
    return Decoded{std::move(event), {}};
}

static Decoded from_json_text_guarded(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return Decoded{std::nullopt, "event is not valid JSON"};
    return from_json(j);
}

Decoded decode(std::string_view text) { return from_json_text_guarded(text); }

}  // namespace op::events
