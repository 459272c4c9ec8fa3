// The event catalogue: one envelope for every event, and a typed payload per event type.
// Every process uses these types; nothing else in the project defines an event.
// Plain values, no I/O: safe to copy between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace op::events {

// The reasons a failure event carries; clients match on these texts, as they did with the
// original system.
namespace reason {
inline constexpr const char* kInsufficientFunds = "Insufficient funds";
inline constexpr const char* kOutOfStock = "Item out of stock";
inline constexpr const char* kUnknownItem = "Unknown item";
}  // namespace reason

// Field limits every event satisfies; the HTTP ingress checks orders against the same ones.
namespace limits {
inline constexpr std::size_t kMaxIdLength = 128;    // ids, order ids, item names
inline constexpr std::size_t kMaxTextLength = 256;  // customer, reasons
inline constexpr std::int64_t kMaxQuantity = 1'000'000;
}  // namespace limits

// Money is integer cents end to end; a float never holds an amount.
using Cents = std::int64_t;

struct OrderPlaced {
    std::string item;
    std::int64_t quantity = 1;
    Cents amount_cents = 0;
    std::string customer;
};

struct PaymentVerified {
    std::string item;
    std::int64_t quantity = 1;
    Cents amount_cents = 0;
    std::string customer;
};

struct PaymentFailed {
    std::string reason;
    Cents amount_cents = 0;
    std::string customer;
};

struct StockReserved {
    std::string item;
    std::int64_t quantity = 1;
    std::int64_t remaining = 0;  // stock left after this reservation
    std::string customer;
};

// Also carries "Unknown item": the order cannot be served from stock either way, and the
// same compensation (a refund) follows.
struct OutOfStock {
    std::string item;
    std::int64_t quantity = 1;
    std::int64_t available = 0;
    std::string reason;
    std::string customer;
};

struct PaymentRefunded {
    Cents amount_cents = 0;
    std::string reason;
};

struct Shipped {
    std::string item;
    std::int64_t quantity = 1;
    std::string tracking_id;
    std::string customer;
};

struct CustomerNotified {
    std::string outcome;  // "success" or "failed"
    std::string reason;   // empty on success
    std::string customer;
};

// A service could not apply an event (a valid envelope with impossible content, or a handler
// that failed on it). The event is set aside here with the reason, so the service's checkpoint
// moves on, nothing of it is half-applied, and an operator can find it on the DeadLetter topic.
struct DeadLetter {
    std::string service;      // the service that gave up on the event
    std::string reason;
    std::uint64_t event_seq = 0;
    std::string event_type;
    std::string event_json;   // the original event as appended (a JSON object)
};

using Payload = std::variant<OrderPlaced, PaymentVerified, PaymentFailed, StockReserved,
                             OutOfStock, PaymentRefunded, Shipped, CustomerNotified, DeadLetter>;

enum class EventType {
    OrderPlaced,
    PaymentVerified,
    PaymentFailed,
    StockReserved,
    OutOfStock,
    PaymentRefunded,
    Shipped,
    CustomerNotified,
    DeadLetter,
};

inline constexpr int kEventTypeCount = 9;

// The version each type is written at. Older versions are still read (upcast on decode), so
// recorded logs replay: OrderPlaced v1 had no quantity (it meant 1).
int current_version(EventType type);

// The wire name of a type, which is also its topic on the broker ("PaymentVerified").
std::string_view type_name(EventType type);
std::optional<EventType> parse_type_name(std::string_view name);

struct Event {
    std::string id;
    std::string order_id;
    std::uint64_t seq = 0;  // 0 until the broker appends it
    std::string ts;         // ISO-8601 UTC with microseconds, set by the publisher
    std::string causation_id;  // empty for OrderPlaced, which has no cause on the bus
    // No version field: decode upcasts every event to its type's current version, and
    // encode writes that version as "v".
    Payload data;

    EventType type() const { return static_cast<EventType>(data.index()); }
    std::string_view type_name() const { return events::type_name(type()); }

    template <class T>
    const T* as() const {
        return std::get_if<T>(&data);
    }
};

// Builds the event a handler publishes in response to `cause`: same order, id derived
// from the cause and the new type, so reprocessing `cause` yields the same id.
Event derive(const Event& cause, Payload data, std::string ts);

// The DeadLetter for `cause` from `service`: its id is derived from the cause and the service,
// so two services that both give up on one event each set it aside once.
Event dead_letter(const Event& cause, std::string cause_json, std::string service,
                  std::string reason, std::string ts);

}  // namespace op::events
