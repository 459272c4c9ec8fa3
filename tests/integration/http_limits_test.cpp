// The order service's HTTP edge under requests a careless or hostile client sends: framing a
// proxy could read differently from us (request smuggling), oversized URLs and header
// sections, clients that send a request too slowly to ever finish it (slowloris), and more
// waiting /place-order requests than it allows. Each is refused (or cut off), and
// none of them places an order.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <optional>
#include <random>
#include <thread>

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

using Clock = std::chrono::steady_clock;

// A client socket driven by hand: bytes sent when the test says, and a look at whether the
// server has closed the connection that never blocks.
class RawConnection {
public:
    explicit RawConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        REQUIRE(fd_ >= 0);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~RawConnection() { ::close(fd_); }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    // False once the server no longer takes bytes.
    bool send(std::string_view bytes) {
        return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(bytes.size());
    }

    // The server ended the connection (end of stream or reset). Bytes it sent are kept.
    bool closed_by_server() {
        char buf[4096];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            received_.append(buf, static_cast<std::size_t>(n));
            return false;
        }
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }

    // One response (status line, headers, Content-Length body); "" if none within `timeout`.
    std::string read_response(std::chrono::milliseconds timeout) {
        const auto end = Clock::now() + timeout;
        while (Clock::now() < end) {
            const auto head_end = received_.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                const auto at = received_.find("Content-Length: ");
                const auto length =
                    at < head_end ? std::stoull(received_.substr(at + 16)) : std::size_t{0};
                if (received_.size() >= head_end + 4 + length) {
                    std::string response = received_.substr(0, head_end + 4 + length);
                    received_.erase(0, response.size());
                    return response;
                }
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) > 0 && closed_by_server()) break;
        }
        return {};
    }

    [[nodiscard]] const std::string& received() const { return received_; }

private:
    int fd_;
    std::string received_;
};

int status_of(const std::string& response) {
    return response.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(response.substr(9, 3)) : 0;
}

// A client that sends `request` one byte every `interval` from `first_byte` on (optionally
// after sending its first `fast` bytes at once) and notes when the server cut it off.
struct SlowClient {
    SlowClient(int port, std::string request, std::size_t fast = 0)
        : conn(port), bytes(std::move(request)), sent(fast) {}
    RawConnection conn;
    std::string bytes;
    std::size_t sent;
    Clock::time_point first_byte{};
    std::optional<Clock::duration> cut_after;
};

// Drives slow clients until each is cut off or `give_up` passes: a byte each every `interval`,
// and a look every 10 ms for the server closing the connection.
void drip(std::vector<std::unique_ptr<SlowClient>>& clients, std::chrono::milliseconds interval,
          std::chrono::milliseconds give_up) {
    const auto start = Clock::now();
    for (auto& c : clients) {
        c->first_byte = Clock::now();
        REQUIRE(c->conn.send(std::string_view(c->bytes).substr(0, c->sent + 1)));
        ++c->sent;
    }
    auto next_byte = start + interval;
    while (Clock::now() - start < give_up) {
        bool open = false;
        for (auto& c : clients) {
            if (c->cut_after) continue;
            if (c->conn.closed_by_server()) {
                c->cut_after = Clock::now() - c->first_byte;
                continue;
            }
            open = true;
        }
        if (!open) return;
        if (Clock::now() >= next_byte) {
            for (auto& c : clients) {
                if (c->cut_after || c->sent >= c->bytes.size()) continue;
                // A refused send means the server is gone; the next look records when.
                if (c->conn.send(std::string_view(c->bytes).substr(c->sent, 1))) ++c->sent;
            }
            next_byte += interval;
        }
        std::this_thread::sleep_for(10ms);
    }
}

const std::string kOrder = R"({"item":"phone","amount":1})";

// OrderPlaced events in the broker's log: what was placed, whether or not the read model has
// caught up with it yet.
std::size_t orders_placed(const System& system) {
    std::size_t n = 0;
    for (const auto& e : op::test::export_log(system)) n += e.value("type", "") == "OrderPlaced";
    return n;
}

std::string post_orders(const std::string& extra_headers = "") {
    return "POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
           extra_headers + "Content-Length: " + std::to_string(kOrder.size()) + "\r\n\r\n" +
           kOrder;
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

TEST_CASE("slowloris clients are cut off at --request-timeout-ms while other orders go through") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 50})";
    options.extra_args["order"] = {"--request-timeout-ms", "1500"};
    System system(options);
    system.start_all();

    std::vector<std::unique_ptr<SlowClient>> slow;
    for (int i = 0; i < 3; ++i) {
        slow.push_back(std::make_unique<SlowClient>(system.order_port(), post_orders()));
    }
    auto dripping = std::async(std::launch::async, [&] { drip(slow, 300ms, 10s); });

    // Meanwhile, ordinary orders are answered at once.
    for (int i = 0; i < 5; ++i) {
        const auto started = Clock::now();
        const auto a = op::test::post_json(system, "/place-order", kOrder);
        CHECK(a.status == 200);
        CHECK(a.body["status"] == "success");
        CHECK(Clock::now() - started < 1000ms);
    }
    dripping.get();
    for (const auto& c : slow) {
        REQUIRE(c->cut_after.has_value());
        CAPTURE(std::chrono::duration_cast<std::chrono::milliseconds>(*c->cut_after).count());
        CHECK(*c->cut_after >= 1400ms);  // not before the bound (less a poll's slack)
        CHECK(*c->cut_after < 3500ms);   // and soon after it
        CHECK(c->sent < c->bytes.size());
        CHECK(c->conn.received().empty());  // cut, not answered
    }
    // Only the five ordinary orders were placed; the log says why the others went.
    CHECK(orders_placed(system) == 5);
    CHECK(op::test::file_contains(system.log_path("order"), "cut off slow client"));

    // Many slow clients at once hold no thread (the ingress is one event loop): an order that
    // comes after them is answered at once, not when they are cut off.
    slow.clear();
    for (int i = 0; i < 40; ++i) {
        slow.push_back(std::make_unique<SlowClient>(system.order_port(), post_orders()));
    }
    dripping = std::async(std::launch::async, [&] { drip(slow, 300ms, 10s); });
    const auto started = Clock::now();
    const auto after = op::test::post_json(system, "/place-order", kOrder);
    CHECK(after.status == 200);
    CHECK(Clock::now() - started < 1000ms);
    dripping.get();
    for (const auto& c : slow) CHECK(c->cut_after.has_value());
    CHECK(orders_placed(system) == 6);
}

TEST_CASE("a body sent byte by byte after a fast header section is cut off too") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    options.extra_args["order"] = {"--request-timeout-ms", "1500"};
    System system(options);
    system.start_all();

    const std::string request = post_orders();
    std::vector<std::unique_ptr<SlowClient>> slow;
    slow.push_back(std::make_unique<SlowClient>(system.order_port(), request,
                                                request.size() - kOrder.size()));
    drip(slow, 300ms, 10s);
    REQUIRE(slow[0]->cut_after.has_value());
    CHECK(*slow[0]->cut_after >= 1400ms);
    CHECK(*slow[0]->cut_after < 3500ms);
    CHECK(slow[0]->sent < request.size());
    CHECK(op::test::file_contains(system.log_path("order"), "body not finished"));
    CHECK(orders_placed(system) == 0);

    // The same request sent at its normal pace is placed.
    const std::string answer = op::test::raw_http_exchange(system.order_port(), request, 3s);
    CHECK(status_of(answer) == 202);
    CHECK(orders_placed(system) == 1);
}

TEST_CASE("an idle keep-alive connection and a slow handler are not cut by the request deadline") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    options.decision_timeout_ms = 2500;
    options.extra_args["order"] = {"--request-timeout-ms", "1000"};
    System system(options);
    system.start_all();

    SUBCASE("idle between two requests for longer than the deadline") {
        RawConnection conn(system.order_port());
        const std::string get = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        REQUIRE(conn.send(get));
        CHECK(status_of(conn.read_response(3s)) == 200);
        // The idle time is the scenario (under httplib's 5 s keep-alive timeout), not a wait
        // for an outcome: the connection must still be open after it.
        std::this_thread::sleep_for(2500ms);
        CHECK_FALSE(conn.closed_by_server());
        REQUIRE(conn.send(get));
        CHECK(status_of(conn.read_response(3s)) == 200);
    }
    SUBCASE("a place-order that waits for its outcome longer than the deadline") {
        REQUIRE(system.stop("inventory") == 0);  // nothing is decided: the handler waits
        const auto started = Clock::now();
        const auto a = op::test::post_json(system, "/place-order", kOrder);
        CHECK(a.status == 202);
        CHECK(a.body["status"] == "pending");
        CHECK(Clock::now() - started >= 2400ms);
        CHECK_FALSE(op::test::file_contains(system.log_path("order"), "cut off slow client"));
    }
}

TEST_CASE("oversized header sections get 431 with a JSON error and place nothing") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    System system(options);
    system.start_all();

    std::string many;
    for (int i = 0; i < 200; ++i) many += "X-Small-" + std::to_string(i) + ": v\r\n";
    const std::string chunk(6000, 'b');
    struct Case {
        const char* what;
        std::string headers;
        const char* mentions;
    };
    const std::vector<Case> cases = {
        {"one 20 KiB header", "X-Big: " + std::string(20 * 1024, 'a') + "\r\n", "header line"},
        {"200 small headers", many, "header lines"},
        {"three 6000-byte headers (over 16 KiB together)",
         "X-A: " + chunk + "\r\nX-B: " + chunk + "\r\nX-C: " + chunk + "\r\n",
         "header section is over"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        const RawAnswer a = raw(system, post_orders(c.headers));
        CHECK(a.status == 431);
        REQUIRE(a.body.is_object());
        CHECK(a.body["status"] == "error");
        CHECK(a.body["error"].get<std::string>().find(c.mentions) != std::string::npos);
    }
    CHECK(op::test::export_log(system).empty());  // not one OrderPlaced

    // Just under every limit: 93 header lines, two of them 7 KiB, about 15.5 KiB in all.
    std::string under;
    for (int i = 0; i < 88; ++i) under += "X-Small-" + std::to_string(i) + ": v\r\n";
    under += "X-A: " + std::string(7000, 'c') + "\r\nX-B: " + std::string(7000, 'c') + "\r\n";
    const RawAnswer fine = raw(system, post_orders(under));
    CHECK(fine.status == 202);
    CHECK(orders_placed(system) == 1);
}

TEST_CASE("pipelined requests are answered in order, and 100-continue, 405 and HTTP/1.0 work as HTTP says") {
    SystemOptions options;
    options.initial_stock_json = R"({"phone": 5})";
    System system(options);
    system.start_all();

    SUBCASE("three requests in one write: three answers, in the order asked") {
        RawConnection conn(system.order_port());
        REQUIRE(conn.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post_orders() +
                          "GET /orders/nope HTTP/1.1\r\nHost: x\r\n\r\n"));
        const auto health = conn.read_response(3s);
        const auto placed = conn.read_response(3s);
        const auto missing = conn.read_response(3s);
        CHECK(status_of(health) == 200);
        CHECK(health.find("\"applied_seq\"") != std::string::npos);
        CHECK(status_of(placed) == 202);
        CHECK(placed.find("\"placed\"") != std::string::npos);
        CHECK(status_of(missing) == 404);
        CHECK(missing.find("no order with id nope") != std::string::npos);
        CHECK_FALSE(conn.closed_by_server());
    }
    SUBCASE("Expect: 100-continue gets its interim answer before the body is sent") {
        RawConnection conn(system.order_port());
        const std::string request = post_orders("Expect: 100-continue\r\n");
        const auto body_at = request.size() - kOrder.size();
        REQUIRE(conn.send(request.substr(0, body_at)));
        REQUIRE(poll_until(3s, [&] {
            conn.closed_by_server();  // takes what has arrived
            return conn.received().find("HTTP/1.1 100 Continue\r\n\r\n") == 0;
        }));
        CHECK(conn.read_response(3s) == "HTTP/1.1 100 Continue\r\n\r\n");
        REQUIRE(conn.send(request.substr(body_at)));
        CHECK(status_of(conn.read_response(3s)) == 202);
    }
    SUBCASE("a method a path does not take: 405 with Allow, and the connection goes on") {
        RawConnection conn(system.order_port());
        REQUIRE(conn.send("DELETE /orders HTTP/1.1\r\nHost: x\r\n\r\n"));
        const auto answer = conn.read_response(3s);
        CHECK(status_of(answer) == 405);
        CHECK(answer.find("Allow: GET, POST\r\n") != std::string::npos);
        REQUIRE(conn.send("GET /inventory HTTP/1.1\r\nHost: x\r\n\r\n"));
        const auto inventory = conn.read_response(3s);
        CHECK(status_of(inventory) == 200);
        CHECK(inventory.find("\"phone\"") != std::string::npos);
    }
    SUBCASE("HTTP/1.0 without keep-alive: answered, then closed") {
        RawConnection conn(system.order_port());
        REQUIRE(conn.send("GET /healthz HTTP/1.0\r\n\r\n"));
        const auto answer = conn.read_response(3s);
        CHECK(status_of(answer) == 200);
        CHECK(answer.find("Connection: close\r\n") != std::string::npos);
        CHECK(poll_until(3s, [&] { return conn.closed_by_server(); }));
    }
    CHECK(orders_placed(system) <= 2);
}
