#include "read_model.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "op/events/money.hpp"

namespace op::order {

using events::Event;

bool OrderView::decided() const {
    return status == "reserved" || status == "shipped" || status == "notified" ||
           status == "failed";
}

std::optional<Decision> OrderView::decision() const {
    if (!decided()) return std::nullopt;
    return Decision{status == "failed", reason};
}

bool OrderView::terminal() const {
    if (!notified) return false;
    if (status == "notified") return true;
    return status == "failed" && (!paid || refunded);
}

std::vector<std::string> OrderView::waiting_on() const {
    if (terminal()) return {};
    if (!problem.empty()) return {"operator"};
    if (status == "failed") {
        std::vector<std::string> out;
        if (paid && !refunded) out.emplace_back("payment");
        if (!notified) out.emplace_back("notification");
        return out;
    }
    if (status == "placed") return {"payment"};
    if (status == "paid") return {"inventory"};
    if (status == "reserved") return {"fulfilment"};
    return {"notification"};
}

namespace {

constexpr const char* kOrderColumns =
    "order_id, status, reason, item, quantity, amount_cents, customer, paid, refunded, "
    "notified, placed_at, updated_at, tracking_id, problem";

// OrderView::terminal() in SQL, kept in the terminal column so in-flight orders are indexed.
constexpr const char* kTerminalSql =
    "notified = 1 AND (status = 'notified' OR (status = 'failed' AND (paid = 0 OR refunded = 1)))";

}  // namespace

ReadModel::ReadModel(store::Db& db) : db_(db) {
    // The read model is built only from the log, so a database of another schema version is
    // dropped and rebuilt from seq 1 rather than migrated.
    auto& version = db_.prepare("PRAGMA user_version");
    version.bind().step();
    const auto found = version.int64(0);
    version.reset();
    if (found != kSchemaVersion) {
        store::Transaction tx(db_);
        db_.exec("DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS order_events;"
                 "DROP TABLE IF EXISTS stock_view;");
        db_.set_checkpoint(0);
        db_.exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion));
        tx.commit();
    }
    db_.exec(
        "CREATE TABLE IF NOT EXISTS orders ("
        " order_id TEXT PRIMARY KEY,"
        " status TEXT NOT NULL,"
        " reason TEXT NOT NULL DEFAULT '',"
        " item TEXT NOT NULL,"
        " quantity INTEGER NOT NULL,"
        " amount_cents INTEGER NOT NULL,"
        " customer TEXT NOT NULL DEFAULT '',"
        " paid INTEGER NOT NULL DEFAULT 0,"
        " refunded INTEGER NOT NULL DEFAULT 0,"
        " notified INTEGER NOT NULL DEFAULT 0,"
        " placed_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL,"
        " tracking_id TEXT NOT NULL DEFAULT '',"
        " problem TEXT NOT NULL DEFAULT '',"
        " terminal INTEGER NOT NULL DEFAULT 0,"
        " placed_seq INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, placed_seq);"
        "CREATE INDEX IF NOT EXISTS orders_by_seq ON orders (placed_seq);"
        "CREATE INDEX IF NOT EXISTS orders_in_flight ON orders (terminal, updated_at);"
        "CREATE TABLE IF NOT EXISTS order_events ("
        " order_id TEXT NOT NULL,"
        " seq INTEGER NOT NULL,"
        " type TEXT NOT NULL,"
        " id TEXT NOT NULL,"
        " causation_id TEXT NOT NULL,"
        " ts TEXT NOT NULL,"
        " PRIMARY KEY (order_id, seq));"
        "CREATE TABLE IF NOT EXISTS stock_view ("
        " item TEXT PRIMARY KEY,"
        " available INTEGER NOT NULL,"
        " as_of_seq INTEGER NOT NULL)");
}

void ReadModel::seed_stock(const std::map<std::string, std::int64_t>& initial) {
    for (const auto& [item, available] : initial) {
        db_.prepare("INSERT OR IGNORE INTO stock_view (item, available, as_of_seq) "
                    "VALUES (?, ?, 0)")
            .bind(item, available)
            .run();
    }
}

void ReadModel::set_status(const Event& e, const char* status) {
    db_.prepare("UPDATE orders SET status = ?, updated_at = ? WHERE order_id = ?")
        .bind(status, e.ts, e.order_id)
        .run();
}

// Only CustomerNotified and PaymentRefunded can make an order terminal (it needs the notice,
// and a paid failure also the refund), so only they recompute the column.
void ReadModel::refresh_terminal(const std::string& order_id) {
    db_.prepare(std::string("UPDATE orders SET terminal = (") + kTerminalSql +
                ") WHERE order_id = ?")
        .bind(order_id)
        .run();
}

std::optional<Decision> ReadModel::apply(const Event& e) {
    // The timeline is keyed by seq, so applying an event twice changes nothing.
    auto& timeline = db_.prepare(
        "INSERT OR IGNORE INTO order_events (order_id, seq, type, id, causation_id, ts) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    timeline.bind(e.order_id, e.seq, e.type_name(), e.id, e.causation_id, e.ts).run();
    if (sqlite3_changes(db_.handle()) == 0) return std::nullopt;

    auto update_stock = [&](const std::string& item, std::int64_t available) {
        db_.prepare("INSERT INTO stock_view (item, available, as_of_seq) VALUES (?, ?, ?) "
                    "ON CONFLICT (item) DO UPDATE SET available = excluded.available, "
                    "as_of_seq = excluded.as_of_seq")
            .bind(item, available, e.seq)
            .run();
    };

    switch (e.type()) {
        case events::EventType::OrderPlaced: {
            const auto& p = std::get<events::OrderPlaced>(e.data);
            db_.prepare("INSERT OR IGNORE INTO orders (order_id, status, item, quantity, "
                        "amount_cents, customer, placed_at, updated_at, placed_seq) "
                        "VALUES (?, 'placed', ?, ?, ?, ?, ?, ?, ?)")
                .bind(e.order_id, p.item, p.quantity, p.amount_cents, p.customer, e.ts, e.ts,
                      e.seq)
                .run();
            return std::nullopt;
        }
        case events::EventType::PaymentVerified:
            db_.prepare("UPDATE orders SET status = 'paid', paid = 1, updated_at = ? "
                        "WHERE order_id = ?")
                .bind(e.ts, e.order_id)
                .run();
            return std::nullopt;
        case events::EventType::PaymentFailed:
            db_.prepare("UPDATE orders SET status = 'failed', reason = ?, updated_at = ? "
                        "WHERE order_id = ?")
                .bind(std::get<events::PaymentFailed>(e.data).reason, e.ts, e.order_id)
                .run();
            return Decision{true, std::get<events::PaymentFailed>(e.data).reason};
        case events::EventType::StockReserved: {
            const auto& p = std::get<events::StockReserved>(e.data);
            set_status(e, "reserved");
            update_stock(p.item, p.remaining);
            return Decision{};
        }
        case events::EventType::OutOfStock: {
            const auto& p = std::get<events::OutOfStock>(e.data);
            db_.prepare("UPDATE orders SET status = 'failed', reason = ?, updated_at = ? "
                        "WHERE order_id = ?")
                .bind(p.reason, e.ts, e.order_id)
                .run();
            // An unknown item has no stock level worth showing.
            if (p.reason != events::reason::kUnknownItem) update_stock(p.item, p.available);
            return Decision{true, p.reason};
        }
        case events::EventType::PaymentRefunded:
            db_.prepare("UPDATE orders SET refunded = 1, updated_at = ? WHERE order_id = ?")
                .bind(e.ts, e.order_id)
                .run();
            refresh_terminal(e.order_id);
            return std::nullopt;
        case events::EventType::Shipped:
            db_.prepare("UPDATE orders SET status = 'shipped', tracking_id = ?, updated_at = ? "
                        "WHERE order_id = ?")
                .bind(std::get<events::Shipped>(e.data).tracking_id, e.ts, e.order_id)
                .run();
            return std::nullopt;
        case events::EventType::CustomerNotified:
            db_.prepare("UPDATE orders SET notified = 1, updated_at = ?, "
                        "status = CASE WHEN status = 'shipped' THEN 'notified' ELSE status END "
                        "WHERE order_id = ?")
                .bind(e.ts, e.order_id)
                .run();
            refresh_terminal(e.order_id);
            return std::nullopt;
        case events::EventType::DeadLetter: {
            // The order stops moving; say why where its status is read.
            const auto& d = std::get<events::DeadLetter>(e.data);
            db_.prepare("UPDATE orders SET problem = ?, updated_at = ? WHERE order_id = ?")
                .bind(fmt::format("{} set aside #{} {}: {}", d.service, d.event_seq,
                                  d.event_type, d.reason),
                      e.ts, e.order_id)
                .run();
            return std::nullopt;
        }
    }
    return std::nullopt;
}

OrderView ReadModel::row_to_view(store::Statement& q) {
    OrderView v;
    v.order_id = q.text(0);
    v.status = q.text(1);
    v.reason = q.text(2);
    v.item = q.text(3);
    v.quantity = q.int64(4);
    v.amount_cents = q.int64(5);
    v.customer = q.text(6);
    v.paid = q.int64(7) != 0;
    v.refunded = q.int64(8) != 0;
    v.notified = q.int64(9) != 0;
    v.placed_at = q.text(10);
    v.updated_at = q.text(11);
    v.tracking_id = q.text(12);
    v.problem = q.text(13);
    return v;
}

std::optional<OrderView> ReadModel::order(const std::string& order_id) {
    auto& q = db_.prepare(std::string("SELECT ") + kOrderColumns +
                          " FROM orders WHERE order_id = ?");
    std::optional<OrderView> out;
    if (q.bind(order_id).step()) out = row_to_view(q);
    q.reset();
    return out;
}

std::vector<TimelineEntry> ReadModel::timeline(const std::string& order_id) {
    auto& q = db_.prepare("SELECT seq, type, id, causation_id, ts FROM order_events "
                          "WHERE order_id = ? ORDER BY seq");
    std::vector<TimelineEntry> out;
    q.bind(order_id);
    while (q.step()) {
        out.push_back({static_cast<std::uint64_t>(q.int64(0)), q.text(1), q.text(2), q.text(3),
                       q.text(4)});
    }
    return out;
}

std::vector<OrderView> ReadModel::orders(const std::string& status, std::int64_t limit,
                                         std::int64_t offset) {
    auto& q = db_.prepare(std::string("SELECT ") + kOrderColumns +
                          " FROM orders WHERE (?1 = '' OR status = ?1) "
                          "ORDER BY placed_seq LIMIT ?2 OFFSET ?3");
    std::vector<OrderView> out;
    q.bind(status, limit, offset);
    while (q.step()) out.push_back(row_to_view(q));
    return out;
}

std::int64_t ReadModel::count(const std::string& status) {
    auto& q = db_.prepare("SELECT COUNT(*) FROM orders WHERE (?1 = '' OR status = ?1)");
    q.bind(status).step();
    const auto n = q.int64(0);
    q.reset();
    return n;
}

std::vector<OrderView> ReadModel::stalled(const std::string& progressed_before,
                                          std::int64_t limit, std::int64_t offset) {
    auto& q = db_.prepare(std::string("SELECT ") + kOrderColumns +
                          " FROM orders WHERE terminal = 0 AND updated_at < ?1 "
                          "ORDER BY updated_at LIMIT ?2 OFFSET ?3");
    std::vector<OrderView> out;
    q.bind(progressed_before, limit, offset);
    while (q.step()) out.push_back(row_to_view(q));
    return out;
}

std::int64_t ReadModel::count_stalled(const std::string& progressed_before) {
    auto& q = db_.prepare("SELECT COUNT(*) FROM orders WHERE terminal = 0 AND updated_at < ?1");
    q.bind(progressed_before).step();
    const auto n = q.int64(0);
    q.reset();
    return n;
}

std::vector<StockView> ReadModel::stock(std::int64_t limit, std::int64_t offset) {
    auto& q = db_.prepare("SELECT item, available, as_of_seq FROM stock_view ORDER BY item "
                          "LIMIT ? OFFSET ?");
    std::vector<StockView> out;
    q.bind(limit, offset);
    while (q.step()) {
        out.push_back({q.text(0), q.int64(1), static_cast<std::uint64_t>(q.int64(2))});
    }
    return out;
}

std::int64_t ReadModel::stock_count() {
    auto& q = db_.prepare("SELECT COUNT(*) FROM stock_view");
    q.bind().step();
    const auto n = q.int64(0);
    q.reset();
    return n;
}

nlohmann::json to_json(const OrderView& v) {
    nlohmann::json j = {{"order_id", v.order_id},
                        {"status", v.status},
                        {"item", v.item},
                        {"quantity", v.quantity},
                        {"amount", events::format_cents(v.amount_cents)},
                        {"amount_cents", v.amount_cents},
                        {"paid", v.paid},
                        {"refunded", v.refunded},
                        {"notified", v.notified},
                        {"terminal", v.terminal()},
                        {"placed_at", v.placed_at},
                        {"updated_at", v.updated_at}};
    if (!v.reason.empty()) j["reason"] = v.reason;
    if (!v.customer.empty()) j["customer"] = v.customer;
    if (!v.tracking_id.empty()) j["tracking_id"] = v.tracking_id;
    if (!v.problem.empty()) j["problem"] = v.problem;
    if (!v.terminal()) j["waiting_on"] = v.waiting_on();
    return j;
}

nlohmann::json to_json(const TimelineEntry& e) {
    nlohmann::json j = {{"seq", e.seq}, {"type", e.type}, {"id", e.id}, {"ts", e.ts}};
    if (!e.causation_id.empty()) j["causation_id"] = e.causation_id;
    return j;
}

}  // namespace op::order
