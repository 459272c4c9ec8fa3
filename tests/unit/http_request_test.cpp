// The order service's HTTP request reader, fed bytes the way a non-blocking socket hands them
// over: whole, cut anywhere, several requests back to back; and every limit and framing rule
// it refuses on, at the byte that crosses it.
#include "http_request.hpp"

#include <doctest/doctest.h>

#include <string>

using op::order::HttpRequest;
using op::order::HttpResponse;
using op::order::RequestLimits;
using op::order::RequestReader;
using State = RequestReader::State;

namespace {

const std::string kBody = R"({"item":"phone","amount":1})";

std::string post(const std::string& extra = "", const std::string& body = kBody) {
    return "POST /place-order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
           extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Feeds `wire` whole; returns the reader's state and how much it took.
std::pair<State, std::size_t> feed(RequestReader& r, std::string_view wire) {
    std::size_t taken = 0;
    while (taken < wire.size() &&
           (r.state() == State::Head || r.state() == State::Body)) {
        const auto n = r.consume(wire.substr(taken));
        if (n == 0) break;
        taken += n;
    }
    return {r.state(), taken};
}

RequestReader::State state_of(const std::string& wire, const RequestLimits& limits = {}) {
    RequestReader r(limits);
    return feed(r, wire).first;
}

}  // namespace

TEST_CASE("a request is read whole however its bytes are cut") {
    const RequestLimits limits;
    const std::string wire = post("X-Note: a, b \r\n");
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        CAPTURE(cut);
        RequestReader r(limits);
        const auto first = r.consume(std::string_view(wire).substr(0, cut));
        CHECK(first == cut);
        CHECK(r.started() == (cut > 0));
        const auto [state, rest] = feed(r, std::string_view(wire).substr(cut));
        REQUIRE(state == State::Done);
        CHECK(first + rest == wire.size());
        const HttpRequest req = r.take();
        CHECK(req.method == "POST");
        CHECK(req.path == "/place-order");
        CHECK(req.body == kBody);
        CHECK(req.keep_alive);
        CHECK(req.header("content-type") == "application/json");
        CHECK(req.header("X-NOTE") == "a, b");  // optional whitespace trimmed
        CHECK(req.header("Idempotency-Key").empty());
        CHECK(r.state() == State::Head);
        CHECK_FALSE(r.started());
    }
}

TEST_CASE("back-to-back requests: each takes only its own bytes") {
    const RequestLimits limits;
    const std::string get = "GET /orders/abc-1_Z?limit=5&status=fail%65d&x=a+b HTTP/1.1\r\n\r\n";
    const std::string wire = post() + get + post("Connection: close\r\n", "{}");
    RequestReader r(limits);
    std::string_view rest(wire);
    auto next = [&] {
        const auto [state, taken] = feed(r, rest);
        rest.remove_prefix(taken);
        REQUIRE(state == State::Done);
        return r.take();
    };
    CHECK(next().body == kBody);
    const auto g = next();
    CHECK(g.method == "GET");
    CHECK(g.path == "/orders/abc-1_Z");
    REQUIRE(g.param("limit") != nullptr);
    CHECK(*g.param("limit") == "5");
    CHECK(*g.param("status") == "failed");
    CHECK(*g.param("x") == "a b");
    CHECK(g.param("offset") == nullptr);
    CHECK(g.body.empty());
    const auto last = next();
    CHECK(last.body == "{}");
    CHECK_FALSE(last.keep_alive);
    CHECK(rest.empty());
}

TEST_CASE("HTTP/1.0 keeps the connection only when asked, and empty lines before a request are "
          "skipped") {
    RequestReader r{RequestLimits{}};
    CHECK(feed(r, "\r\nGET /healthz HTTP/1.0\r\n\r\n").first == State::Done);
    CHECK_FALSE(r.take().keep_alive);
    CHECK(feed(r, "GET /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").first == State::Done);
    CHECK(r.take().keep_alive);
}

TEST_CASE("Expect: 100-continue is noted once the head is read") {
    RequestReader r{RequestLimits{}};
    const std::string wire = post("Expect: 100-continue\r\n");
    const auto head_end = wire.find("\r\n\r\n") + 4;
    CHECK(r.consume(std::string_view(wire).substr(0, head_end)) == head_end);
    CHECK(r.state() == State::Body);
    CHECK(r.expects_continue());
    CHECK(feed(r, std::string_view(wire).substr(head_end)).first == State::Done);
}

TEST_CASE("framing that could be read two ways is refused, before the body is read") {
    struct Case {
        const char* what;
        std::string wire;
        int status;
        const char* mentions;
    };
    const std::vector<Case> cases = {
        {"two Content-Lengths", post("Content-Length: 3\r\n"), 400, "more than one"},
        {"a negative Content-Length",
         "POST /orders HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, "non-negative integer"},
        {"a Content-Length with a suffix",
         "POST /orders HTTP/1.1\r\nContent-Length: 27x\r\n\r\n", 400, "non-negative integer"},
        {"chunked", "POST /orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1b\r\n", 411,
         "Content-Length"},
        {"compressed", post("Content-Encoding: gzip\r\n"), 415, "Content-Encoding \"gzip\""},
        {"a body over the limit", "POST /orders HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413,
         "limit: 65536 bytes"},
        {"a space before the colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "malformed"},
        {"a folded header line", "GET / HTTP/1.1\r\nX-A: 1\r\n  more\r\n\r\n", 400, "malformed"},
        {"a bare LF line end", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "malformed"},
        {"no version", "GET /\r\n\r\n", 400, "malformed"},
        {"two spaces", "GET  / HTTP/1.1\r\n\r\n", 400, "malformed"},
        {"not origin-form", "GET http://x/ HTTP/1.1\r\n\r\n", 400, "malformed"},
        {"a broken escape", "GET /orders/%zz HTTP/1.1\r\n\r\n", 400, "percent-escape"},
        {"a cut escape", "GET /orders?limit=%4 HTTP/1.1\r\n\r\n", 400, "percent-escape"},
        {"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505, "not supported"},
        {"a NUL in the method", std::string("G\0T / HTTP/1.1\r\n\r\n", 18), 400, "malformed"},
    };
    for (const auto& c : cases) {
        const std::string what = c.what;
        CAPTURE(what);
        RequestReader r{RequestLimits{}};
        feed(r, c.wire);
        REQUIRE(r.state() == State::Refused);
        CHECK(r.refusal().status == c.status);
        CHECK(r.refusal().error.find(c.mentions) != std::string::npos);
    }
}

TEST_CASE("head limits refuse at the byte that crosses them, not after buffering the rest") {
    RequestLimits limits;
    limits.max_target = 100;
    limits.max_header_line = 64;
    limits.max_header_bytes = 200;
    limits.max_header_count = 5;

    SUBCASE("a long URL: 414 once the request line is past the target's room") {
        const std::string wire = "GET /" + std::string(10'000, 'a') + " HTTP/1.1\r\n\r\n";
        RequestReader r(limits);
        const auto [state, taken] = feed(r, wire);
        CHECK(state == State::Refused);
        CHECK(r.refusal().status == 414);
        CHECK(taken < 200);
        // Just over the target limit but within the line's room: still 414, on the target.
        CHECK(state_of("GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n", limits) ==
              State::Refused);
        CHECK(state_of("GET /" + std::string(99, 'a') + " HTTP/1.1\r\n\r\n", limits) ==
              State::Done);
    }
    SUBCASE("a long header line") {
        RequestReader r(limits);
        const auto [state, taken] =
            feed(r, "GET / HTTP/1.1\r\nX-Big: " + std::string(5000, 'b') + "\r\n\r\n");
        CHECK(state == State::Refused);
        CHECK(r.refusal().status == 431);
        CHECK(r.refusal().error.find("header line is over 64") != std::string::npos);
        CHECK(taken < 100);
        // 61 bytes and CRLF: 63, under 64.
        CHECK(state_of("GET / HTTP/1.1\r\nX-A: " + std::string(56, 'b') + "\r\n\r\n", limits) ==
              State::Done);
    }
    SUBCASE("too many header lines") {
        std::string five;
        for (int i = 0; i < 5; ++i) five += "X-" + std::to_string(i) + ": v\r\n";
        CHECK(state_of("GET / HTTP/1.1\r\n" + five + "\r\n", limits) == State::Done);
        RequestReader r(limits);
        feed(r, "GET / HTTP/1.1\r\n" + five + "X-5: v\r\n\r\n");
        CHECK(r.state() == State::Refused);
        CHECK(r.refusal().status == 431);
        CHECK(r.refusal().error.find("more than 5 header lines") != std::string::npos);
    }
    SUBCASE("too many header bytes") {
        const std::string line = "X-A: " + std::string(50, 'c') + "\r\n";  // 57 bytes
        RequestReader r(limits);
        feed(r, "GET / HTTP/1.1\r\n" + line + line + line + line + "\r\n");
        CHECK(r.state() == State::Refused);
        CHECK(r.refusal().status == 431);
        CHECK(r.refusal().error.find("header section is over 200 bytes") != std::string::npos);
    }
}

TEST_CASE("an answer on the wire: status line, length, extra headers, close") {
    HttpResponse res;
    res.status = 503;
    res.body = R"({"status":"error"})";
    res.headers.emplace_back("Retry-After", "1");
    res.close = true;
    CHECK(op::order::serialize(res) ==
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Content-Length: 18\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
          R"({"status":"error"})");
    HttpResponse ok;
    ok.status = 202;
    CHECK(op::order::serialize(ok) ==
          "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n");
}
