// The tap against real processes: history from the log, then live, with nothing lost or
// repeated at the seam between them.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using nlohmann::json;
using op::test::poll_until;
using op::test::Process;
using op::test::System;
using op::test::SystemOptions;
using namespace std::chrono_literals;

namespace {

std::string place(System& system, const std::string& body) {
    auto client = system.http();
    auto res = client.Post("/place-order", body, "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    return json::parse(res->body)["order_id"];
}

std::vector<json> read_ndjson(const std::filesystem::path& path) {
    std::vector<json> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("---", 0) == 0 || line.empty()) continue;  // the harness's spawn header
        auto j = json::parse(line, nullptr, false);
        if (!j.is_discarded()) out.push_back(std::move(j));
    }
    return out;
}

}  // namespace

TEST_CASE("tap --from-start --json sees every event once, in seq order, across the seam") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 100})";
    System system(options);
    system.start_all();

    // Four orders in history: 5 events each.
    for (int i = 0; i < 4; ++i) place(system, R"({"item":"phone","amount":10})");
    REQUIRE(poll_until(10s, [&] {
        auto client = system.http();
        auto res = client.Get("/orders?status=notified&limit=1");
        return res && json::parse(res->body)["total"] == 4;
    }));

    const auto out = system.data_dir() / "tap.ndjson";
    Process tap(op::test::with_args({std::string(OP_BIN_DIR) + "/tap", "--live", system.live_endpoint(), "--replay",
                 system.replay_endpoint(), "--from-start", "--json", "--count", "40"}, system.security_args("operator")),
                out);
    // Four more while the tap runs: some of these land during its replay, some after.
    std::vector<std::string> live_ids;
    for (int i = 0; i < 4; ++i) live_ids.push_back(place(system, R"({"item":"phone","amount":10})"));

    auto status = tap.wait_for(20s);
    REQUIRE_MESSAGE(status.has_value(), "tap did not exit after --count 40");
    CHECK(*status == 0);

    const auto events = read_ndjson(out);
    REQUIRE(events.size() == 40);
    for (std::size_t i = 0; i < events.size(); ++i) {
        CHECK(events[i]["seq"] == i + 1);  // the log's seqs 1..40, none missing or repeated
    }
    std::map<std::string, int> per_order;
    for (const auto& e : events) per_order[e["order_id"]]++;
    CHECK(per_order.size() == 8);
    for (const auto& [id, n] : per_order) CHECK(n == 5);
    for (const auto& id : live_ids) CHECK(per_order.count(id) == 1);

    // Exactly what the log holds: the same 40 events, byte for byte, as `broker export`.
    const auto exported = system.data_dir() / "export.ndjson";
    Process exporter(op::test::with_args({std::string(OP_BIN_DIR) + "/broker", "export", "--live",
                      system.live_endpoint(), "--replay", system.replay_endpoint(), "--to", "40",
                      "-o", exported.string()}, system.security_args("operator")),
                     system.data_dir() / "export.log");
    REQUIRE(exporter.wait_for(20s) == std::optional<int>(0));
    const auto logged = read_ndjson(exported);
    REQUIRE(logged.size() == 40);
    for (std::size_t i = 0; i < logged.size(); ++i) CHECK(logged[i] == events[i]);
}

TEST_CASE("tap filters by topic and order, and refuses an unknown topic") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 100, "tablet": 0})";
    System system(options);
    system.start_all();
    place(system, R"({"item":"phone","amount":10})");
    const auto refused = place(system, R"({"item":"tablet","amount":10})");
    place(system, R"({"item":"phone","amount":10})");
    REQUIRE(poll_until(10s, [&] {
        auto client = system.http();
        auto res = client.Get("/orders?limit=1");
        auto res2 = client.Get("/orders/" + refused);
        return res && json::parse(res->body)["total"] == 3 && res2 &&
               json::parse(res2->body)["terminal"] == true;
    }));

    const auto out = system.data_dir() / "tap-order.ndjson";
    Process by_order(op::test::with_args({std::string(OP_BIN_DIR) + "/tap", "--live", system.live_endpoint(),
                      "--replay", system.replay_endpoint(), "--from-start", "--json", "--order",
                      refused, "--count", "5"}, system.security_args("operator")),
                     out);
    REQUIRE(by_order.wait_for(20s) == std::optional<int>(0));
    std::vector<std::string> types;
    for (const auto& e : read_ndjson(out)) {
        CHECK(e["order_id"] == refused);
        types.push_back(e["type"]);
    }
    REQUIRE(types.size() == 5);
    CHECK(std::vector<std::string>(types.begin(), types.begin() + 3) ==
          std::vector<std::string>{"OrderPlaced", "PaymentVerified", "OutOfStock"});
    // Both follow from OutOfStock, in either order.
    std::sort(types.begin() + 3, types.end());
    CHECK(types[3] == "CustomerNotified");
    CHECK(types[4] == "PaymentRefunded");

    const auto topic_out = system.data_dir() / "tap-topic.txt";
    Process by_topic(op::test::with_args({std::string(OP_BIN_DIR) + "/tap", "--live", system.live_endpoint(),
                      "--replay", system.replay_endpoint(), "--from-start", "--topic",
                      "StockReserved", "--count", "2", "--color", "never"}, system.security_args("operator")),
                     topic_out);
    REQUIRE(by_topic.wait_for(20s) == std::optional<int>(0));
    const auto text = op::test::read_file(topic_out);
    CHECK(text.find("stock reserved: phone x1 (99 left)") != std::string::npos);
    CHECK(text.find("stock reserved: phone x1 (98 left)") != std::string::npos);
    CHECK(text.find("OutOfStock") == std::string::npos);

    Process bad({std::string(OP_BIN_DIR) + "/tap", "--topic", "Nonsense"},
                system.data_dir() / "tap-bad.txt");
    auto bad_status = bad.wait_for(10s);
    REQUIRE(bad_status.has_value());
    CHECK(*bad_status != 0);
    CHECK(op::test::read_file(system.data_dir() / "tap-bad.txt").find("unknown topic") !=
          std::string::npos);
}

TEST_CASE("tap --order draws the causal chain, says what it waits on, and exits when done") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    System system(options);
    system.start_all();

    CHECK(system.stop("inventory") == 0);
    auto client = system.http();
    auto res = client.Post("/orders", R"({"item":"phone","amount":42})", "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 202);
    const std::string id = json::parse(res->body)["order_id"];

    const auto out = system.data_dir() / "tap-timeline.txt";
    Process tap(op::test::with_args({std::string(OP_BIN_DIR) + "/tap", "--live", system.live_endpoint(), "--replay",
                 system.replay_endpoint(), "--from-start", "--order", id, "--color", "never"}, system.security_args("operator")),
                out);
    REQUIRE_MESSAGE(poll_until(10s, [&] {
                        return op::test::file_contains(out, "waiting on inventory");
                    }),
                    op::test::read_file(out));
    CHECK(tap.running());

    system.start("inventory");
    auto status = tap.wait_for(10s);
    REQUIRE_MESSAGE(status.has_value(), "tap --order did not exit after the order finished");
    CHECK(*status == 0);
    const auto text = op::test::read_file(out);
    CHECK(text.find("order " + id) != std::string::npos);
    CHECK(text.find("└─ PaymentVerified") != std::string::npos);
    CHECK(text.find("    └─ StockReserved") != std::string::npos);  // caused by PaymentVerified
    CHECK(text.find(" ms  shipped phone x1") != std::string::npos);  // each hop has its duration
    CHECK(text.find("finished: success in") != std::string::npos);
}
