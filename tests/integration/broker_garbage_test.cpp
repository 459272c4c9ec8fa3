// The broker's three sockets under garbage: wrong frame counts, empty frames, non-JSON, JSON of
// the wrong shape, unknown event types, oversized frames and absurd replay requests, a few
// thousand of each, straight at the ZeroMQ endpoints. Every well-framed request gets an ERR
// naming the problem; the broker keeps running, appends none of it, and the next real order
// goes through.
#include <doctest/doctest.h>

#include <map>
#include <random>

#include <nlohmann/json.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "harness.hpp"
#include "op/bus/batch_records.hpp"
#include "op/bus/protocol.hpp"
#include "inspect.hpp"
#include "order_api.hpp"
#include "zmq_client.hpp"

using nlohmann::json;
using op::test::poll_until;
using op::test::System;
using op::test::SystemOptions;
using namespace std::chrono_literals;

namespace {

using Frames = std::vector<std::string>;

// Sends every request on one DEALER and collects the replies until `expected` arrived or the
// broker went quiet for a second. Returns the replies' first frames (ERR, BATCH, ...).
std::vector<Frames> exchange(zmq::context_t& ctx, const std::string& endpoint,
                             const op::bus::ClientCurveKeys& keys,
                             const std::vector<Frames>& requests, std::size_t expected) {
    zmq::socket_t s = op::test::raw_client(ctx, zmq::socket_type::dealer, endpoint, keys);
    for (const auto& r : requests) {
        std::vector<zmq::const_buffer> frames;
        for (const auto& f : r) frames.push_back(zmq::buffer(f));
        REQUIRE(zmq::send_multipart(s, frames));
    }
    std::vector<Frames> replies;
    std::vector<zmq::message_t> msg;
    while (replies.size() < expected) {
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(1000));
        if (!(item.revents & ZMQ_POLLIN)) break;  // quiet for a second: no more answers
        msg.clear();
        if (!zmq::recv_multipart(s, std::back_inserter(msg))) break;
        Frames f;
        for (auto& m : msg) f.push_back(m.to_string());
        replies.push_back(std::move(f));
    }
    return replies;
}

std::string valid_order_json(const std::string& id) {
    return json{{"id", id}, {"type", "OrderPlaced"}, {"order_id", id}, {"ts",
                "2026-11-26T05:00:00.000000Z"}, {"v", 2},
                {"data", {{"item", "phone"}, {"quantity", 1}, {"amount_cents", 100}}}}
        .dump();
}

}  // namespace

TEST_CASE("thousands of malformed frames at every broker socket: refused, nothing appended") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    System system(options);
    system.start_all();
    zmq::context_t ctx(1);
    // Garbage from clients the broker let in: the order service's key may publish, the
    // operator's may read. (Clients without a key do not get that far: security_test.)
    const auto publisher = system.client("order");
    const auto reader = system.client("operator");
    std::mt19937_64 rng(7);
    auto random_bytes = [&](std::size_t n) {
        std::string s(n, '\0');
        for (auto& c : s) c = static_cast<char>(rng() & 0xff);
        return s;
    };

    // ---- publish endpoint: every request below is refused with ERR and a reason.
    const json valid = json::parse(valid_order_json("x"));
    std::vector<Frames> publish;
    std::vector<std::string> expected_reason;
    auto add = [&](Frames f, const char* reason) {
        publish.push_back(std::move(f));
        expected_reason.emplace_back(reason);
    };
    for (int i = 0; i < 300; ++i) {
        const std::string t = "t" + std::to_string(i);
        add({"PUB"}, "frames");
        add({"PUB", t}, "frames");
        add({"PUB", t, valid_order_json("g" + t), "extra"}, "frames");
        add({"", "", ""}, "frames");
        add({"PUBLISH", t, valid_order_json("h" + t)}, "frames");
        add({"PUB", t, ""}, "not valid JSON");
        add({"PUB", t, random_bytes(1 + rng() % 200)}, "");
        add({"PUB", t, "[1,2,3]"}, "object");
        add({"PUB", t, R"({"type":5})"}, "type");
        json unknown = valid;
        unknown["type"] = "FreeMoney";
        unknown["id"] = "u" + t;
        add({"PUB", t, unknown.dump()}, "not a known event type");
        json no_data = valid;
        no_data.erase("data");
        no_data["id"] = "d" + t;
        add({"PUB", t, no_data.dump()}, "data");
        json negative = valid;
        negative["data"]["amount_cents"] = -100;
        negative["id"] = "n" + t;
        add({"PUB", t, negative.dump()}, "amount_cents");
    }
    const auto publish_replies =
        exchange(ctx, system.publish_endpoint(), publisher.curve, publish, publish.size());
    REQUIRE(publish_replies.size() == publish.size());
    std::size_t errors = 0;
    for (std::size_t i = 0; i < publish_replies.size(); ++i) {
        const auto& r = publish_replies[i];
        REQUIRE(r.size() == 3);
        errors += r[0] == "ERR";
        CHECK_MESSAGE(r[0] == "ERR", "reply ", i, ": ", r[0], " ", r[2]);
        if (!expected_reason[i].empty()) {
            CHECK_MESSAGE(r[2].find(expected_reason[i]) != std::string::npos, r[2]);
        }
    }
    CHECK(errors == publish.size());

    // A frame over the broker's 1 MiB limit: ZeroMQ drops the connection, nothing is read.
    exchange(ctx, system.publish_endpoint(), publisher.curve,
             {{"PUB", "big", std::string(2u << 20, '{')}}, 0);

    // ---- replay endpoint: malformed and absurd requests.
    std::vector<Frames> replay;
    for (int i = 0; i < 200; ++i) {
        const std::string id = "r" + std::to_string(i);
        replay.push_back({"REPLAY"});
        replay.push_back({"REPLAY", id, "1", "10"});
        replay.push_back({"REPLAY", id, "one", "10", ""});
        replay.push_back({"REPLAY", id, "1", "0", ""});
        replay.push_back({"REPLAY", id, "1", "99999999999999", ""});
        replay.push_back({"REPLAY", id, "-1", "10", ""});
        replay.push_back({"REPLAY", id, "1", "10", "NoSuchTopic"});
        replay.push_back({"GIMME", id, "1", "10", ""});
        replay.push_back({random_bytes(8), random_bytes(3)});
    }
    const auto replay_replies = exchange(ctx, system.replay_endpoint(), reader.curve, replay, replay.size());
    REQUIRE(replay_replies.size() == replay.size());
    for (const auto& r : replay_replies) CHECK(r[0] == "ERR");
    // From far past the head: an empty batch, not an error and not a scan.
    const auto far =
        exchange(ctx, system.replay_endpoint(), reader.curve, {{"REPLAY", "far", "18446744073709551615", "10", ""}}, 1);
    REQUIRE(far.size() == 1);
    CHECK(far[0][0] == "BATCH");
    CHECK(far[0].size() == 4);  // BATCH, id, head, next_from: no events

    // ---- live endpoint: garbage sent upstream on an XSUB is drained and ignored.
    {
        zmq::socket_t x = op::test::raw_client(ctx, zmq::socket_type::xsub,
                                               system.live_endpoint(), reader.curve);
        for (int i = 0; i < 2000; ++i) {
            const std::string junk = random_bytes(1 + rng() % 64);
            x.send(zmq::buffer(junk), zmq::send_flags::dontwait);
        }
    }

    // Still alive, nothing appended, and a real order goes through.
    CHECK(system.running("broker"));
    CHECK(op::test::export_log(system).empty());
    const auto order = op::test::post_json(system, "/place-order", R"({"item":"phone","amount":1})");
    CHECK(order.status == 200);
    CHECK(order.body["status"] == "success");
    CHECK(op::test::export_log(system).size() == 5);
    REQUIRE(system.stop("broker") == 0);
    // The refusals are counted in the broker's closing line.
    const auto tail = system.log_tail("broker", 3);
    CHECK_MESSAGE(tail.find(std::to_string(publish.size() + replay.size()) + " refused") !=
                      std::string::npos,
                  tail);
}

TEST_CASE("PUBS: each event of a batch answered in one ACKS frame, and a malformed batch appends "
          "nothing") {
    System system;
    system.start("broker");
    zmq::context_t ctx(1);
    const auto publisher = system.client("order");
    auto records = [](const std::vector<std::pair<std::string, std::string>>& events) {
        std::string out;
        for (const auto& [token, event] : events) op::bus::append_record(out, token, event);
        return out;
    };
    // Answers of an ACKS frame, token -> "KIND value".
    auto answers = [](const Frames& reply) {
        std::map<std::string, std::string> out;
        CHECK(op::bus::parse_records(reply.at(2), [&](std::string_view token,
                                                      std::string_view answer) {
            out.emplace(std::string(token), std::string(answer));
        }));
        return out;
    };

    // Damaged framing, or more events than a frame may hold: refused whole with one ERR, not
    // a single event of it appended.
    const std::string good = records({{"1", valid_order_json("pubs-a")}});
    std::vector<std::pair<std::string, std::string>> too_many;
    for (std::size_t i = 0; i <= op::bus::protocol::kMaxPublishBatchEvents; ++i) {
        too_many.emplace_back(std::to_string(i), "{}");
    }
    too_many.front().second = valid_order_json("pubs-too-many");
    const std::vector<Frames> damaged = {
        {"PUBS", "", good + "2 999\n{}"},
        {"PUBS", "", good + "trailing"},
        {"PUBS", "", good + " 2\n{}"},
        {"PUBS", "", "1 x\n{}" + good},
        {"PUBS", ""},
        {"PUBS", "", good, "extra"},
        {"PUBS", "", records(too_many)}};
    const auto refused = exchange(ctx, system.publish_endpoint(), publisher.curve, damaged,
                                  damaged.size());
    REQUIRE(refused.size() == damaged.size());
    for (const auto& r : refused) {
        CHECK(r.at(0) == "ERR");
        CHECK_MESSAGE((r.at(2).find("malformed") != std::string::npos ||
                       r.at(2).find("frames") != std::string::npos ||
                       r.at(2).find("more than the 4096 allowed") != std::string::npos),
                      r.at(2));
    }
    CHECK(op::test::export_log(system).empty());

    // Well framed: good events appended in order, a bad one refused on its own, a duplicate
    // (inside the batch, then across batches) answered with the first seq.
    const auto first = exchange(
        ctx, system.publish_endpoint(), publisher.curve,
        {{"PUBS", "",
          records({{"1", valid_order_json("pubs-a")},
                   {"2", "not json"},
                   {"3", valid_order_json("pubs-b")},
                   {"4", valid_order_json("pubs-a")}})}},
        1);
    REQUIRE(first.size() == 1);
    REQUIRE(first[0].at(0) == "ACKS");
    const auto a = answers(first[0]);
    REQUIRE(a.size() == 4);
    CHECK(a.at("1") == "ACK 1");
    CHECK(a.at("2").rfind("ERR ", 0) == 0);
    CHECK(a.at("2").find("JSON") != std::string::npos);
    CHECK(a.at("3") == "ACK 2");
    CHECK(a.at("4") == "DUP 1");
    const auto again = exchange(ctx, system.publish_endpoint(), publisher.curve,
                                {{"PUBS", "", records({{"9", valid_order_json("pubs-b")}})}}, 1);
    REQUIRE(again.size() == 1);
    CHECK(answers(again[0]).at("9") == "DUP 2");

    const auto log = op::test::export_log(system);
    REQUIRE(log.size() == 2);
    CHECK(log[0]["id"] == "pubs-a");
    CHECK(log[1]["id"] == "pubs-b");
    CHECK(system.running("broker"));
}
