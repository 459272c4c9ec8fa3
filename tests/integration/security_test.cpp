// The locked-down bus: CurveZMQ on every broker endpoint, connections let in by the broker's
// ZAP handler from authorized_keys, and publishes authorised by the identity the handler gave
// the connection. Every test runs the real broker (and, where an order must flow, the
// services) with keys from `broker keys init`, and checks the log: what is refused is never
// appended.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "harness.hpp"
#include "inspect.hpp"
#include "op/bus/publisher.hpp"
#include "op/bus/subscriber.hpp"
#include "op/events/codec.hpp"
#include "op/events/ids.hpp"
#include "op/security/keys.hpp"
#include "order_api.hpp"
#include "sample_events.hpp"
#include "zmq_client.hpp"

using nlohmann::json;
using op::test::Process;
using op::test::System;
using op::test::SystemOptions;
using op::test::order_placed_event;
using op::test::poll_until;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

op::bus::PublishResult publish_within(const op::bus::Endpoints& broker,
                                      const op::events::Event& event,
                                      std::chrono::milliseconds bound) {
    op::bus::Publisher publisher(broker);
    return publisher.publish(event, Clock::now() + bound).get();
}

bool log_has_order(const System& system, const std::string& order_id) {
    for (const auto& e : op::test::export_log(system)) {
        if (e["order_id"] == order_id) return true;
    }
    return false;
}

// A client that knows the broker's public key but has a key of its own the broker never saw.
op::bus::Endpoints with_unknown_key(const System& system) {
    auto endpoints = system.client("operator");
    const auto stranger = op::security::generate_key_pair();
    endpoints.curve.public_key = stranger.public_key;
    endpoints.curve.secret_key = stranger.secret_key;
    return endpoints;
}

std::string run_keys(const System& system, const std::vector<std::string>& args) {
    const auto out = system.data_dir() / "logs" / "keys-command.log";
    Process keys(op::test::with_args({std::string(OP_BIN_DIR) + "/broker", "keys", "--data-dir",
                                      system.data_dir().string()},
                                     args),
                 out);
    REQUIRE(keys.wait_for(20s) == std::optional<int>(0));
    return op::test::read_file(out, keys.log_offset());
}

// The broker's log since its latest start mentions `needle` (before `bound` passes).
bool broker_logged(System& system, const std::string& needle, std::chrono::milliseconds bound) {
    auto& broker = system.process("broker");
    return poll_until(bound, [&] {
        return op::test::file_contains(broker.log_path(), needle, broker.log_offset());
    });
}

}  // namespace

TEST_CASE("a client with an unknown key can neither publish nor subscribe") {
    System system;
    system.start("broker");
    const auto stranger = with_unknown_key(system);

    op::bus::SubscriberOptions sub;
    sub.endpoints = stranger;
    op::bus::Subscriber subscriber(sub);
    const auto result = publish_within(stranger, order_placed_event("stranger-order"), 2s);
    CHECK(result.status == op::bus::PublishStatus::TimedOut);
    CHECK(broker_logged(system, "unknown key " + stranger.curve.public_key, 5s));

    // A known client's event flows; the stranger's subscriber still sees nothing.
    REQUIRE(publish_within(system.client("replay"), order_placed_event("real-order"), 10s)
                .durable());
    CHECK(subscriber.poll(500ms).empty());
    CHECK_FALSE(subscriber.caught_up());
    CHECK_FALSE(log_has_order(system, "stranger-order"));
    CHECK(log_has_order(system, "real-order"));
}

TEST_CASE("the fulfilment identity cannot publish PaymentVerified: refused, counted, the order does not ship") {
    SystemOptions options;
    options.payment_limit = "50";
    System system(options);
    system.start_all();

    // Over the limit: payment fails it.
    const auto placed =
        op::test::post_json(system, "/place-order", R"({"item":"phone","amount":100})");
    REQUIRE(placed.status == 200);
    const std::string order_id = placed.body["order_id"];
    CHECK(placed.body["status"] == "failed");

    // Fulfilment forges the payment: the broker refuses it by the connection's identity.
    op::events::Event forged;
    forged.order_id = order_id;
    forged.id = op::events::derived_id(order_id, "PaymentVerified");
    forged.causation_id = op::events::derived_id(order_id, "OrderPlaced");
    forged.ts = op::events::now_timestamp();
    forged.data = op::events::PaymentVerified{"phone", 1, 10000, "mallory"};
    const auto result = publish_within(system.client("fulfilment"), forged, 10s);
    CHECK(result.status == op::bus::PublishStatus::Rejected);
    CHECK_MESSAGE(result.error.find("identity \"fulfilment\" may not publish PaymentVerified") !=
                      std::string::npos,
                  result.error);
    CHECK(broker_logged(system, "identity \"fulfilment\" may not publish PaymentVerified", 5s));

    // Payment may publish it, inventory may not publish a Shipped: the policy is per type.
    op::events::Event shipped = forged;
    shipped.id = op::events::derived_id(order_id, "Shipped");
    shipped.data = op::events::Shipped{"phone", 1, "TRK-FORGED", "mallory"};
    CHECK(publish_within(system.client("inventory"), shipped, 10s).status ==
          op::bus::PublishStatus::Rejected);

    // Neither is in the log and the order stays failed, unshipped.
    const auto log = op::test::export_log(system);
    for (const auto& e : log) {
        if (e["order_id"] != order_id) continue;
        CHECK(e["type"] != "PaymentVerified");
        CHECK(e["type"] != "Shipped");
    }
    const auto order = op::test::get_json(system, "/orders/" + order_id);
    CHECK(order.body["status"] == "failed");

    // Counted: the broker's closing line.
    REQUIRE(system.stop("broker") == 0);
    const auto tail = system.log_tail("broker", 3);
    CHECK_MESSAGE(tail.find("which 2 unauthorized") != std::string::npos, tail);
}

TEST_CASE("a client with the wrong server key is not let in") {
    System system;
    system.start("broker");
    auto endpoints = system.client("replay");
    endpoints.curve.server_public = op::security::generate_key_pair().public_key;
    CHECK(publish_within(endpoints, order_placed_event("wrong-server-key"), 2s).status ==
          op::bus::PublishStatus::TimedOut);
    // The right key works from the same identity.
    REQUIRE(publish_within(system.client("replay"), order_placed_event("right-server-key"), 10s)
                .durable());
    CHECK_FALSE(log_has_order(system, "wrong-server-key"));
}

TEST_CASE("a client using NULL security against the CURVE endpoints gets nothing in or out") {
    System system;
    system.start_all();
    zmq::context_t ctx(1);
    auto pub = op::test::raw_client(ctx, zmq::socket_type::dealer, system.publish_endpoint());
    auto sub = op::test::raw_client(ctx, zmq::socket_type::sub, system.live_endpoint());
    sub.set(zmq::sockopt::subscribe, "");
    auto replay = op::test::raw_client(ctx, zmq::socket_type::dealer, system.replay_endpoint());

    const std::string null_json = op::events::encode(order_placed_event("null-order"));
    std::array<zmq::const_buffer, 3> frames = {zmq::str_buffer("PUB"), zmq::str_buffer("1"),
                                               zmq::buffer(null_json)};
    REQUIRE(zmq::send_multipart(pub, frames, zmq::send_flags::dontwait));
    std::array<zmq::const_buffer, 5> ask = {zmq::str_buffer("REPLAY"), zmq::str_buffer("1"),
                                            zmq::str_buffer("1"), zmq::str_buffer("100"),
                                            zmq::str_buffer("")};
    REQUIRE(zmq::send_multipart(replay, ask, zmq::send_flags::dontwait));

    // A real order runs its whole chain meanwhile.
    const auto placed =
        op::test::post_json(system, "/place-order", R"({"item":"phone","amount":1})");
    REQUIRE(placed.status == 200);
    const std::string order_id = placed.body["order_id"];
    REQUIRE(poll_until(10s, [&] { return op::test::order_terminal(system, order_id); }));

    // None of its events, no answer to the replay or the publish, and the NULL event absent.
    std::array<zmq::pollitem_t, 3> items = {zmq::pollitem_t{pub.handle(), 0, ZMQ_POLLIN, 0},
                                            zmq::pollitem_t{sub.handle(), 0, ZMQ_POLLIN, 0},
                                            zmq::pollitem_t{replay.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items.data(), items.size(), 500ms);
    for (const auto& item : items) CHECK((item.revents & ZMQ_POLLIN) == 0);
    CHECK_FALSE(log_has_order(system, "null-order"));
    CHECK(log_has_order(system, order_id));
}

TEST_CASE("a revoked key stops working at once, without restarting anything, and a rotated one works") {
    System system;
    system.start_all();
    const auto replay_keys = system.client("replay");

    // Before: the replay identity publishes and reads.
    op::bus::Publisher publisher(replay_keys);
    REQUIRE(publisher.publish(order_placed_event("before-revoke"), Clock::now() + 10s)
                .get()
                .durable());
    op::bus::SubscriberOptions sub;
    sub.endpoints = replay_keys;
    op::bus::Subscriber subscriber(sub);
    std::uint64_t seen = 0;
    REQUIRE(poll_until(10s, [&] {
        seen += subscriber.poll(100ms).size();
        return subscriber.caught_up() && seen > 0;
    }));

    const auto said = run_keys(system, {"revoke", "replay"});
    CHECK_MESSAGE(said.find("revoked 1 key(s) of \"replay\"") != std::string::npos, said);
    REQUIRE(broker_logged(system, "endpoints bound again", 10s));

    // The same publisher, already connected, can no longer publish...
    CHECK(publisher.publish(order_placed_event("after-revoke"), Clock::now() + 2s).get().status ==
          op::bus::PublishStatus::TimedOut);
    publisher.stop();
    // ... its subscriber gets none of a new order's events, while the services, which
    // reconnected with their own keys, carry that order to its end.
    while (!subscriber.poll(0ms).empty()) {
    }
    const auto placed =
        op::test::post_json(system, "/place-order", R"({"item":"phone","amount":1})");
    REQUIRE(placed.status == 200);
    CHECK(placed.body["status"] == "success");
    CHECK(subscriber.poll(500ms).empty());
    CHECK_FALSE(log_has_order(system, "after-revoke"));
    for (const auto& name : System::names()) CHECK(system.running(name));

    // A tool started with a revoked key says why it gets nothing, instead of waiting silently.
    // (Its key files are archived by now, so give it a copy of them as they were.)
    const auto copies = system.data_dir() / "old-keys";
    std::filesystem::create_directories(copies);
    for (const auto& entry : std::filesystem::directory_iterator(system.keys_dir() / "revoked")) {
        const auto name = entry.path().filename().string();
        std::filesystem::copy_file(entry.path(), copies / name.substr(name.find('-') + 1));
    }
    std::filesystem::copy_file(system.keys_dir() / "broker.pub", copies / "broker.pub");
    const auto tap_out = system.data_dir() / "logs" / "revoked-tap.log";
    Process tap({std::string(OP_BIN_DIR) + "/tap", "--live", system.live_endpoint(), "--replay",
                 system.replay_endpoint(), "--keys-dir", copies.string(), "--identity", "replay",
                 "--from-start"},
                tap_out);
    CHECK(poll_until(10s, [&] {
        return op::test::file_contains(tap_out, "the broker refused our key on its live endpoint");
    }));
    tap.terminate();

    // A new key for the identity is let in.
    const auto rotated = run_keys(system, {"rotate", "replay"});
    CHECK_MESSAGE(rotated.find("new key for \"replay\"") != std::string::npos, rotated);
    REQUIRE(broker_logged(system, "authorized_keys reloaded: 7 keys", 10s));
    CHECK(publish_within(system.client("replay"), order_placed_event("after-rotate"), 10s)
              .durable());
}

TEST_CASE("no ZAP handler, no service: the broker will not start without one") {
    System system;
    system.set_env("broker", {{"OP_FAILPOINTS", "broker.zap_start=eio"}});
    CHECK_THROWS(system.start("broker"));
    CHECK(system.process("broker").wait_for(10s).has_value());
    CHECK(op::test::file_contains(system.log_path("broker"), "the ZAP handler did not start"));
    // Nobody could connect meanwhile: nothing was appended.
    system.set_env("broker", {});
    system.start("broker");
    CHECK(op::test::export_log(system).empty());
}

TEST_CASE("a ZAP handler that fails while the broker runs takes the broker down with it") {
    System system;
    // The first handshake is answered (the first publisher's); the second fails the handler.
    system.set_env("broker", {{"OP_FAILPOINTS", "broker.zap_request=eio@2"}});
    system.start("broker");
    REQUIRE(publish_within(system.client("replay"), order_placed_event("first"), 10s).durable());
    const auto late = publish_within(system.client("replay"), order_placed_event("late"), 3s);
    CHECK(late.status == op::bus::PublishStatus::TimedOut);
    const auto status = system.process("broker").wait_for(10s);
    REQUIRE(status.has_value());
    CHECK(*status == 70);
    CHECK(op::test::file_contains(system.log_path("broker"),
                                  "stopping the broker rather than serving without "
                                  "authentication"));
    system.set_env("broker", {});
    system.start("broker");
    const auto log = op::test::export_log(system);
    REQUIRE(log.size() == 1);
    CHECK(log[0]["order_id"] == "first");
}
