// The order service's HTTP edge under requests a careless or hostile client sends: framing a
// proxy could read differently from us (request smuggling), oversized URLs, and more waiting
// /place-order requests than it has threads for. Each is refused with a JSON error naming the
// problem, and none of them places an order.
#include <doctest/doctest.h>

#include <future>
#include <random>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "inspect.hpp"
#include "order_api.hpp"

using nlohmann::json;
using op::test::poll_until;
using op::test::System;
using op::test::SystemOptions;
using namespace std::chrono_literals;

namespace {

struct RawAnswer {
    int status = 0;
    json body;
};

// Status line and JSON body of a raw exchange ("" if none came).
RawAnswer raw(System& system, const std::string& request) {
    const std::string text = op::test::raw_http_exchange(system.order_port(), request, 3s);
    RawAnswer a;
    if (text.rfind("HTTP/1.1 ", 0) == 0) a.status = std::stoi(text.substr(9, 3));
    const auto body_at = text.find("\r\n\r\n");
    if (body_at != std::string::npos) {
        a.body = json::parse(text.substr(body_at + 4), nullptr, false);
    }
    return a;
}

}  // namespace

TEST_CASE("ambiguous framing and oversized URLs are refused and place nothing") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    System system(options);
    system.start_all();

    const std::string order = R"({"item":"phone","amount":1})";
    const std::string head =
        "POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
    struct Case {
        const char* what;
        std::string request;
        int status;
        const char* mentions;
    };
    const std::vector<Case> cases = {
        {"two Content-Lengths",
         head + "Content-Length: 27\r\nContent-Length: 5\r\n\r\n" + order, 400,
         "more than one Content-Length"},
        {"a negative Content-Length", head + "Content-Length: -5\r\n\r\n" + order, 400,
         "non-negative integer"},
        {"a Content-Length that is not a number", head + "Content-Length: 27x\r\n\r\n" + order,
         400, "non-negative integer"},
        {"Content-Length together with chunked",
         head + "Content-Length: 27\r\nTransfer-Encoding: chunked\r\n\r\n1b\r\n" + order +
             "\r\n0\r\n\r\n",
         411, "Content-Length"},
        {"a compressed body", head + "Content-Length: 27\r\nContent-Encoding: br\r\n\r\n" + order,
         415, "Content-Encoding"},
        {"a URL over 8 KiB",
         "GET /orders/" + std::string(10000, 'a') +
             " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
         414,
         "URL is too long"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        const RawAnswer a = raw(system, c.request);
        CHECK(a.status == c.status);
        REQUIRE(a.body.is_object());
        CHECK(a.body["error"].get<std::string>().find(c.mentions) != std::string::npos);
    }
    CHECK(op::test::export_log(system).empty());  // not one OrderPlaced

    // The service still takes a well-formed order afterwards.
    const auto fine = op::test::post_json(system, "/place-order", order);
    CHECK(fine.status == 200);
    CHECK(fine.body["status"] == "success");
}

TEST_CASE("more waiting place-order requests than allowed: the rest get 503 at once, placing nothing") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    options.decision_timeout_ms = 3000;
    options.extra_args["order"] = {"--max-sync-waits", "2"};
    System system(options);
    system.start_all();
    REQUIRE(system.stop("inventory") == 0);  // nothing is decided: every request waits

    std::vector<std::future<op::test::HttpAnswer>> requests;
    for (int i = 0; i < 2; ++i) {
        requests.push_back(std::async(std::launch::async, [&] {
            return op::test::post_json(system, "/place-order", R"({"item":"phone","amount":1})");
        }));
    }
    // Both are waiting (the health endpoint counts them), then two more arrive.
    REQUIRE(poll_until(5s, [&] {
        return op::test::get_json(system, "/healthz").body.value("sync_waits", 0) == 2;
    }));
    for (int i = 0; i < 2; ++i) {
        auto client = system.http();
        const auto started = std::chrono::steady_clock::now();
        auto res = client.Post("/place-order", R"({"item":"phone","amount":2})",
                               "application/json");
        REQUIRE(res);
        CHECK(std::chrono::steady_clock::now() - started < 1500ms);  // not after the bound
        CHECK(res->status == 503);
        CHECK(res->get_header_value("Retry-After") == "1");
        const auto body = json::parse(res->body);
        CHECK(body["error"].get<std::string>().find("already waiting") != std::string::npos);
    }
    // GETs are not starved meanwhile.
    CHECK(op::test::get_json(system, "/orders").status == 200);

    for (auto& r : requests) {
        const auto a = r.get();
        CHECK(a.status == 202);
        CHECK(a.body["status"] == "pending");
    }
    CHECK(op::test::get_json(system, "/orders").body["total"] == 2);  // only the two admitted
    system.start("inventory");
    CHECK(op::test::post_json(system, "/place-order", R"({"item":"phone","amount":3})")
              .body["status"] == "success");
}

TEST_CASE("a few thousand malformed requests at the ingress: all 4xx, none placed, then an order") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    System system(options);
    system.start_all();
    std::mt19937_64 rng(11);
    auto random_text = [&](std::size_t n) {
        std::string s(n, '\0');
        for (auto& c : s) c = static_cast<char>(rng() & 0xff);
        return s;
    };
    const std::vector<std::string> bodies = {
        "", "{", "}", "null", "[]", "\"phone\"", "{\"item\":\"phone\"}", "{\"amount\":1}",
        R"({"item":"phone","amount":"1"})", R"({"item":"phone","amount":1e400})",
        R"({"item":"phone","amount":-1})", R"({"item":"phone","amount":1,"quantity":-2})",
        R"({"item":"","amount":1})", R"({"item":"phone","amount":1,"x":1})",
        R"({"item":"phone","amount":0.001})", R"({"item":{"a":1},"amount":1})",
    };
    auto client = system.http();
    int refused = 0;
    for (int i = 0; i < 2000; ++i) {
        std::string body;
        switch (i % 4) {
            case 0: body = bodies[rng() % bodies.size()]; break;
            case 1: body = random_text(1 + rng() % 300); break;
            case 2:  // an amount that is never a number
                body = "{\"item\":\"phone\",\"amount\":x" + random_text(rng() % 20) + "}";
                break;
            default: body = std::string(70 * 1024, 'x'); break;  // over the 64 KiB limit
        }
        auto res = client.Post(i % 2 ? "/orders" : "/place-order", body, "application/json");
        REQUIRE(res);
        CAPTURE(body.substr(0, 80));
        CHECK(res->status >= 400);
        CHECK(res->status < 500);
        const auto j = json::parse(res->body, nullptr, false);
        CHECK((j.is_object() && j.contains("error")));
        refused += res->status >= 400 && res->status < 500;
    }
    CHECK(refused == 2000);
    // And raw garbage instead of HTTP: the connection is dropped or answered 400, nothing more.
    for (int i = 0; i < 50; ++i) {
        const std::string text = op::test::raw_http_exchange(
            system.order_port(), random_text(1 + rng() % 500) + "\r\n\r\n", 100ms);
        if (!text.empty()) CHECK(text.rfind("HTTP/1.1 4", 0) == 0);
    }
    CHECK(op::test::export_log(system).empty());
    const auto order = op::test::post_json(system, "/place-order", R"({"item":"phone","amount":1})");
    CHECK(order.status == 200);
    CHECK(order.body["status"] == "success");
}
