// Unit tests of apply_one, the runner's per-event step: a handler's effects and events are kept
// when it succeeds; when it cannot apply an event, none of its effects remain and the event is
// set aside as one DeadLetter; infrastructure errors are not mistaken for poison.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "op/events/codec.hpp"
#include "op/events/event.hpp"
#include "op/events/ids.hpp"
#include "op/service/runner.hpp"
#include "op/store/db.hpp"

namespace {

using namespace op::events;
using op::service::apply_one;
using op::service::Handler;
using op::service::PoisonEvent;
using op::store::Db;
using op::store::DbError;
using op::store::Transaction;

constexpr const char* kNow = "2026-11-26T05:00:00.000000Z";

Event paid_event() {
    Event e;
    e.order_id = "o-1";
    e.id = derived_id("o-1", "PaymentVerified");
    e.causation_id = derived_id("o-1", "OrderPlaced");
    e.seq = 42;
    e.ts = kNow;
    e.data = PaymentVerified{"phone", 1, 1000, "ada"};
    return e;
}

std::int64_t rows(Db& db) {
    auto& q = db.prepare("SELECT COUNT(*) FROM effects");
    q.bind().step();
    const auto n = q.int64(0);
    q.reset();
    return n;
}

struct Fixture {
    Db db{":memory:"};
    Event event = paid_event();
    std::string json = encode(paid_event());
    Fixture() { db.exec("CREATE TABLE effects (v INTEGER NOT NULL CHECK (v > 0))"); }

    // A handler that writes one row, then does `then`.
    Handler writes_then(std::function<void()> then) {
        return [this, then](const Event& e, const std::string& now) {
            db.exec("INSERT INTO effects (v) VALUES (1)");
            then();
            return std::vector<Event>{derive(e, StockReserved{"phone", 1, 9, "ada"}, now)};
        };
    }
};

}  // namespace

TEST_CASE("apply_one: a handler that succeeds keeps its effects and its events") {
    Fixture f;
    Transaction tx(f.db);
    const auto out = apply_one(f.db, "inventory", f.writes_then([] {}), f.event, f.json, kNow);
    REQUIRE(out.size() == 1);
    CHECK(out[0].type() == EventType::StockReserved);
    CHECK(rows(f.db) == 1);
    tx.commit();
    CHECK(rows(f.db) == 1);
}

TEST_CASE("apply_one: an event the handler cannot apply becomes one DeadLetter, nothing applied") {
    Fixture f;
    Transaction tx(f.db);
    // An earlier event of the same batch stays applied: only the poison one is undone.
    f.db.exec("INSERT INTO effects (v) VALUES (7)");

    std::string expected_reason;
    Handler handler;
    SUBCASE("PoisonEvent") {
        handler = f.writes_then([] { throw PoisonEvent("impossible content"); });
        expected_reason = "impossible content";
    }
    SUBCASE("any other exception") {
        handler = f.writes_then([] { throw std::out_of_range("bad index"); });
        expected_reason = "the handler failed: bad index";
    }
    SUBCASE("a constraint the database refuses") {
        handler = f.writes_then([&] { f.db.exec("INSERT INTO effects (v) VALUES (-1)"); });
        expected_reason = "the database refused its effects";
    }
    const auto out = apply_one(f.db, "inventory", handler, f.event, f.json, kNow);
    REQUIRE(out.size() == 1);
    const auto* dead = out[0].as<DeadLetter>();
    REQUIRE(dead != nullptr);
    CHECK(dead->service == "inventory");
    CHECK(dead->reason.find(expected_reason) != std::string::npos);
    CHECK(dead->event_seq == 42);
    CHECK(dead->event_type == "PaymentVerified");
    CHECK(nlohmann::json::parse(dead->event_json) == nlohmann::json::parse(f.json));
    CHECK(out[0].order_id == "o-1");
    CHECK(out[0].causation_id == f.event.id);
    CHECK(rows(f.db) == 1);  // the 7 only: the poison event's row is gone
    // The DeadLetter is itself a valid event: it goes through the codec unchanged.
    const auto round = decode(encode(out[0]));
    REQUIRE_MESSAGE(round, round.error);
    CHECK(round.event->as<DeadLetter>()->reason == dead->reason);
    tx.commit();
    CHECK(rows(f.db) == 1);
}

TEST_CASE("apply_one: a DeadLetter id is a function of the event and the service") {
    Fixture f;
    Transaction tx(f.db);
    auto poison = [](const Event&, const std::string&) -> std::vector<Event> {
        throw PoisonEvent("no");
    };
    const auto a = apply_one(f.db, "payment", poison, f.event, f.json, kNow);
    const auto again = apply_one(f.db, "payment", poison, f.event, f.json, kNow);
    const auto other = apply_one(f.db, "inventory", poison, f.event, f.json, kNow);
    CHECK(a[0].id == again[0].id);  // reprocessing after a crash: the broker drops the repeat
    CHECK(a[0].id != other[0].id);  // two services giving up on one event: two letters
}

TEST_CASE("apply_one: a database failure that is not about the data propagates, effects undone") {
    Fixture f;
    Transaction tx(f.db);
    auto handler = f.writes_then([] { throw DbError("disk I/O error", SQLITE_IOERR); });
    CHECK_THROWS_AS(apply_one(f.db, "inventory", handler, f.event, f.json, kNow), DbError);
    CHECK(rows(f.db) == 0);
}
