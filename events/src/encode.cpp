// events::encode without building a JSON document first.
//
// Every process encodes every event it publishes, and the broker encodes each one again to
// put its seq in: in the broker alone that was a fifth of the main thread (nlohmann::json
// makes a std::map of nodes per event, then walks it). This writes the same bytes straight
// into one string: the keys in the order a std::map dump gives them (sorted), integers as
// decimal, strings escaped as nlohmann escapes them. A unit test holds the two encodings
// byte for byte equal for every type. DeadLetter (rare, and it embeds a whole event) and any
// string with a byte over 0x7F (so nlohmann keeps its UTF-8 checks) take nlohmann's path.
#include <charconv>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>

#include <nlohmann/json.hpp>

#include "op/events/codec.hpp"

namespace op::events {
namespace {

bool plain_ascii(std::string_view s) {
    for (unsigned char c : s) {
        if (c >= 0x80) return false;
    }
    return true;
}

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}

    void open() {
        out_.push_back('{');
        first_ = true;
    }
    void close() {
        out_.push_back('}');
        first_ = false;
    }

    void key(std::string_view name) {
        if (!first_) out_.push_back(',');
        first_ = false;
        out_.push_back('"');
        out_.append(name);
        out_.append("\":");
    }

    void string(std::string_view name, std::string_view value) {
        key(name);
        escaped(value);
    }

    template <typename Int>
    void integer(std::string_view name, Int value) {
        key(name);
        char digits[24];
        const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
        out_.append(digits, end);
    }

    // Starts an object as the value of `name`.
    void object(std::string_view name) {
        key(name);
        open();
    }

private:
    // Runs of characters that need no escape are appended whole: one push_back per character
    // was the encoder's largest cost (ids and timestamps have nothing to escape).
    void escaped(std::string_view s) {
        if (!plain_ascii(s)) {
            out_.append(nlohmann::json(s).dump());
            return;
        }
        out_.push_back('"');
        std::size_t run = 0;  // start of the characters not yet appended
        for (std::size_t i = 0; i < s.size(); ++i) {
            const char c = s[i];
            if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) continue;
            out_.append(s.data() + run, i - run);
            run = i + 1;
            switch (c) {
                case '"': out_.append("\\\""); break;
                case '\\': out_.append("\\\\"); break;
                case '\b': out_.append("\\b"); break;
                case '\f': out_.append("\\f"); break;
                case '\n': out_.append("\\n"); break;
                case '\r': out_.append("\\r"); break;
                case '\t': out_.append("\\t"); break;
                default: {
                    static constexpr char kHex[] = "0123456789abcdef";
                    const char code[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
                    out_.append(code, sizeof code);
                }
            }
        }
        out_.append(s.data() + run, s.size() - run);
        out_.push_back('"');
    }

    std::string& out_;
    bool first_ = true;
};

void write_customer(Writer& w, const std::string& customer) {
    if (!customer.empty()) w.string("customer", customer);
}

// Each payload's fields in sorted key order.
void write_payload(Writer& w, const Payload& payload) {
    std::visit(
        [&](const auto& p) {
            using T = std::decay_t<decltype(p)>;
            if constexpr (std::is_same_v<T, OrderPlaced> || std::is_same_v<T, PaymentVerified>) {
                w.integer("amount_cents", p.amount_cents);
                write_customer(w, p.customer);
                w.string("item", p.item);
                w.integer("quantity", p.quantity);
            } else if constexpr (std::is_same_v<T, PaymentFailed>) {
                w.integer("amount_cents", p.amount_cents);
                write_customer(w, p.customer);
                w.string("reason", p.reason);
            } else if constexpr (std::is_same_v<T, StockReserved>) {
                write_customer(w, p.customer);
                w.string("item", p.item);
                w.integer("quantity", p.quantity);
                w.integer("remaining", p.remaining);
            } else if constexpr (std::is_same_v<T, OutOfStock>) {
                w.integer("available", p.available);
                write_customer(w, p.customer);
                w.string("item", p.item);
                w.integer("quantity", p.quantity);
                w.string("reason", p.reason);
            } else if constexpr (std::is_same_v<T, PaymentRefunded>) {
                w.integer("amount_cents", p.amount_cents);
                w.string("reason", p.reason);
            } else if constexpr (std::is_same_v<T, Shipped>) {
                write_customer(w, p.customer);
                w.string("item", p.item);
                w.integer("quantity", p.quantity);
                w.string("tracking_id", p.tracking_id);
            } else if constexpr (std::is_same_v<T, CustomerNotified>) {
                write_customer(w, p.customer);
                w.string("outcome", p.outcome);
                if (!p.reason.empty()) w.string("reason", p.reason);
            }
        },
        payload);
}

}  // namespace

std::string encode(const Event& event) {
    if (std::holds_alternative<DeadLetter>(event.data)) return to_json(event).dump();
    std::string out;
    out.reserve(320);
    Writer w(out);
    w.open();
    if (!event.causation_id.empty()) w.string("causation_id", event.causation_id);
    w.object("data");
    write_payload(w, event.data);
    w.close();
    w.string("id", event.id);
    w.string("order_id", event.order_id);
    if (event.seq != 0) w.integer("seq", event.seq);
    w.string("ts", event.ts);
    w.string("type", event.type_name());
    w.integer("v", current_version(event.type()));
    w.close();
    return out;
}

}  // namespace op::events
