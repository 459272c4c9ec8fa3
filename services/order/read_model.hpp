// The order service's read model: every order's state and timeline, built only from events
// in seq order (so deleting the database and replaying from seq 1 rebuilds it exactly), plus
// the last stock level each item was seen at. SQLite-backed; the caller serialises access.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "decision.hpp"
#include "op/events/event.hpp"
#include "op/store/db.hpp"

namespace op::order {

struct TimelineEntry {
    std::uint64_t seq = 0;
    std::string type;
    std::string id;
    std::string causation_id;
    std::string ts;
};

struct OrderView {
    std::string order_id;
    std::string status;  // placed, paid, reserved, shipped, notified, failed
    std::string reason;  // why it failed
    std::string item;
    std::int64_t quantity = 0;
    events::Cents amount_cents = 0;
    std::string customer;
    bool paid = false;
    bool refunded = false;
    bool notified = false;
    std::string placed_at;
    std::string updated_at;
    std::string tracking_id;
    std::string problem;  // a service set one of its events aside (DeadLetter): why

    // The outcome is known: reserved (success) or failed.
    bool decided() const;
    // That outcome, as /place-order answers it; empty while undecided.
    std::optional<Decision> decision() const;
    // Nothing more will happen: the customer is told and any refund is done.
    bool terminal() const;
    // The services the order waits on next ("payment", "inventory", ...; "operator" once a
    // service dead-lettered one of its events); empty when terminal.
    std::vector<std::string> waiting_on() const;
};

struct StockView {
    std::string item;
    std::int64_t available = 0;
    std::uint64_t as_of_seq = 0;  // 0: the initial stock, not yet touched by an event
};

class ReadModel {
public:
    // Bumped whenever the tables change: an older database is dropped and rebuilt from the log.
    static constexpr int kSchemaVersion = 2;

    explicit ReadModel(store::Db& db);

    // Seeds the stock view from the initial stock (only items not seen yet).
    void seed_stock(const std::map<std::string, std::int64_t>& initial);

    // Applies one event; returns the outcome when this event decided its order
    // (PaymentFailed, StockReserved, OutOfStock applied for the first time).
    std::optional<Decision> apply(const events::Event& event);

    std::optional<OrderView> order(const std::string& order_id);
    std::vector<TimelineEntry> timeline(const std::string& order_id);
    std::vector<OrderView> orders(const std::string& status, std::int64_t limit,
                                  std::int64_t offset);
    std::int64_t count(const std::string& status);
    // Orders not terminal whose last event is older than `progressed_before` (a timestamp
    // as events carry it): stuck, most likely behind a service that is down. Oldest first.
    std::vector<OrderView> stalled(const std::string& progressed_before, std::int64_t limit,
                                   std::int64_t offset);
    std::int64_t count_stalled(const std::string& progressed_before);
    std::vector<StockView> stock(std::int64_t limit, std::int64_t offset);
    std::int64_t stock_count();

private:
    void refresh_terminal(const std::string& order_id);
    OrderView row_to_view(store::Statement& q);
    void set_status(const events::Event& e, const char* status);

    store::Db& db_;
};

nlohmann::json to_json(const OrderView& view);
nlohmann::json to_json(const TimelineEntry& entry);

}  // namespace op::order
