#include "op/events/codec.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "flat_json.hpp"
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

// What the field reader asks of a value, for nlohmann's documents (the full parser) and for
// the fast path's views (flat_json.hpp), so both are read and validated by the same code.
bool is_null(const json& v) { return v.is_null(); }
bool is_string(const json& v) { return v.is_string(); }
std::string string_of(const json& v) { return v.get<std::string>(); }
bool is_integer(const json& v) { return v.is_number_integer(); }
bool is_unsigned(const json& v) { return v.is_number_unsigned(); }
std::uint64_t as_unsigned(const json& v) { return v.get<std::uint64_t>(); }
std::int64_t as_signed(const json& v) { return v.get<std::int64_t>(); }
bool is_object(const json& v) { return v.is_object(); }
const json& object_of(const json& v) { return v; }
const json* member(const json& object, const char* name) {
    auto it = object.find(name);
    return it == object.end() ? nullptr : &*it;
}

bool is_null(const flat::Value&) { return false; }  // the fast path leaves null to nlohmann
bool is_string(const flat::Value& v) { return v.kind == flat::Value::Kind::String; }
std::string string_of(const flat::Value& v) { return std::string(v.text); }
bool is_integer(const flat::Value& v) { return v.kind == flat::Value::Kind::Integer; }
// As nlohmann: an integer written without '-' is unsigned, one with '-' (even -0) is not.
bool is_unsigned(const flat::Value& v) { return is_integer(v) && !v.negative; }
std::uint64_t as_unsigned(const flat::Value& v) { return v.magnitude; }
std::int64_t as_signed(const flat::Value& v) {
    const auto m = static_cast<std::int64_t>(v.magnitude);  // at most 18 digits: no overflow
    return v.negative ? -m : m;
}
bool is_object(const flat::Value& v) { return v.kind == flat::Value::Kind::Object; }
const flat::Object& object_of(const flat::Value& v) { return *v.object; }
const flat::Value* member(const flat::Object& object, const char* name) {
    return object.find(name);
}

// Reads typed fields out of a JSON object, remembering the first problem with its path.
// Later reads after an error are no-ops, so a decoder reads straight through and checks once.
template <typename Object>
class FieldReader {
public:
    using Value = std::remove_cvref_t<decltype(*member(std::declval<const Object&>(), ""))>;

    FieldReader(const Object& object, std::string prefix)
        : object_(object), prefix_(std::move(prefix)) {}

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }

    std::string text(const char* name, bool required_non_empty, std::size_t max_len) {
        std::string out;
        const Value* field = find(name, !required_non_empty);
        if (field == nullptr) return out;
        if (!is_string(*field)) return fail(name, "must be a string"), out;
        out = string_of(*field);
        if (required_non_empty && out.empty()) return fail(name, "must not be empty"), out;
        if (out.size() > max_len) {
            return fail(name, fmt::format("is longer than {} characters", max_len)), out;
        }
        return out;
    }

    std::int64_t integer(const char* name, std::int64_t min, std::int64_t max,
                         std::optional<std::int64_t> fallback = std::nullopt) {
        const Value* field = find(name, fallback.has_value());
        if (field == nullptr) return fallback.value_or(0);
        if (!is_integer(*field)) return fail(name, "must be an integer"), 0;
        if (is_unsigned(*field) && as_unsigned(*field) > static_cast<std::uint64_t>(max)) {
            return fail(name, fmt::format("must be at most {}", max)), 0;
        }
        const auto value = as_signed(*field);
        if (value < min) return fail(name, fmt::format("must be at least {}", min)), 0;
        if (value > max) return fail(name, fmt::format("must be at most {}", max)), 0;
        return value;
    }

    std::uint64_t unsigned_integer(const char* name) {
        const Value* field = find(name, true);
        if (field == nullptr) return 0;
        if (!is_unsigned(*field)) {
            return fail(name, "must be a non-negative integer"), 0;
        }
        return as_unsigned(*field);
    }

    const Value* object(const char* name) {
        const Value* field = find(name, false);
        if (field != nullptr && !is_object(*field)) {
            fail(name, "must be an object");
            return nullptr;
        }
        return field;
    }

    void fail(const char* name, std::string_view what) {
        if (error_.empty()) error_ = fmt::format("{}{} {}", prefix_, name, what);
    }

private:
    const Value* find(const char* name, bool optional) {
        if (!error_.empty()) return nullptr;
        const Value* field = member(object_, name);
        if (field == nullptr || is_null(*field)) {
            if (!optional) fail(name, "is missing");
            return nullptr;
        }
        return field;
    }

    const Object& object_;
    std::string prefix_;
    std::string error_;
};

std::string dump(const json& v) { return v.dump(); }
// Never called: the fast path leaves a DeadLetter to nlohmann (read_event).
std::string dump(const flat::Value&) { return {}; }

template <typename R>
Cents amount(R& r) { return r.integer("amount_cents", 1, kMaxCents); }
template <typename R>
std::int64_t quantity(R& r) { return r.integer("quantity", 1, kMaxQuantity); }
template <typename R>
std::string item(R& r) { return r.text("item", true, kMaxIdLength); }
template <typename R>
std::string customer(R& r) { return r.text("customer", false, kMaxTextLength); }
template <typename R>
std::string reason(R& r) { return r.text("reason", true, kMaxTextLength); }
template <typename R>
std::int64_t stock_level(R& r, const char* name) {
    return r.integer(name, 0, std::numeric_limits<std::int64_t>::max() / 4);
}

template <typename R>
Payload read_payload(EventType type, int version, R& r) {
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
            if (const auto* original = r.object("event")) {
                p.event_json = dump(*original);
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

namespace {

Decoded failed(std::string error) { return Decoded{std::nullopt, std::move(error)}; }

// An event out of an object already parsed, by either path. nullopt only on the fast path,
// for what it leaves to nlohmann (a DeadLetter quotes its original event as a JSON document).
template <typename Object>
std::optional<Decoded> read_event(const Object& object) {
    FieldReader envelope(object, "");
    const std::string type_text = envelope.text("type", true, 64);
    if (!envelope.ok()) return failed(envelope.error());
    const auto type = parse_type_name(type_text);
    if (!type) return failed(fmt::format("type \"{}\" is not a known event type", type_text));
    if constexpr (std::is_same_v<Object, flat::Object>) {
        if (*type == EventType::DeadLetter) return std::nullopt;
    }

    Event event;
    event.id = envelope.text("id", true, kMaxIdLength);
    event.order_id = envelope.text("order_id", true, kMaxIdLength);
    event.seq = envelope.unsigned_integer("seq");
    event.ts = envelope.text("ts", true, 64);
    event.causation_id = envelope.text("causation_id", *type != EventType::OrderPlaced,
                                       kMaxIdLength);
    const int version = static_cast<int>(envelope.integer("v", 1, 1000));
    const auto* data = envelope.object("data");
    if (!envelope.ok()) return failed(envelope.error());
    if (version > current_version(*type)) {
        return failed(fmt::format("v {} of {} is not supported (this build reads v1 to v{})",
                                  version, type_text, current_version(*type)));
    }

    FieldReader fields(object_of(*data), "data.");
    event.data = read_payload(*type, version, fields);
    if (!fields.ok()) return failed(fmt::format("{}: {}", type_text, fields.error()));
    // Upcast done: the payload has every field of the current version.
    return Decoded{std::move(event), {}};
}

}  // namespace

Decoded from_json(const json& j) {
    if (!j.is_object()) return failed("event must be a JSON object");
    return *read_event(j);
}

namespace detail {

std::optional<Decoded> decode_plain(std::string_view text) {
    flat::Document doc;
    if (!flat::scan(text, doc)) return std::nullopt;
    return read_event(doc.top);
}

Decoded decode_with_nlohmann(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return Decoded{std::nullopt, "event is not valid JSON"};
    return from_json(j);
}

}  // namespace detail

Decoded decode(std::string_view text) {
    if (auto fast = detail::decode_plain(text)) return std::move(*fast);
    return detail::decode_with_nlohmann(text);
}

}  // namespace op::events
