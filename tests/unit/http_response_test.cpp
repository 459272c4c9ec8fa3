// bench's HTTP answer reader, fed bytes the way a non-blocking socket hands them over.
#include "http_response.hpp"

#include <doctest/doctest.h>

#include <string>

using op::bench::ResponseParser;
using State = ResponseParser::State;

TEST_CASE("a kept-alive answer is complete once its Content-Length has arrived, in any pieces") {
    const std::string wire =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n"
        "{\"status\":\"success\"}";
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        ResponseParser p;
        CHECK(p.feed(wire.substr(0, cut)) ==
              (cut == wire.size() ? State::Complete : State::Incomplete));
        CHECK(p.feed(wire.substr(cut)) == State::Complete);
        const auto r = p.take();
        CHECK(r.status == 200);
        CHECK(r.body == "{\"status\":\"success\"}");
        CHECK(r.keep_alive);
        CHECK(p.state() == State::Incomplete);
    }
}

TEST_CASE("bytes past one answer are kept for the next") {
    ResponseParser p;
    const std::string one = "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}";
    const std::string two = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1\r\n\r\nx";
    CHECK(p.feed(one + two.substr(0, 10)) == State::Complete);
    auto r = p.take();
    CHECK(r.status == 202);
    CHECK(r.body == "{}");
    CHECK(p.state() == State::Incomplete);
    CHECK(p.feed(two.substr(10)) == State::Complete);
    r = p.take();
    CHECK(r.status == 503);
    CHECK(r.body == "x");
}

TEST_CASE("Connection: close and HTTP/1.0 answers say the connection ends") {
    ResponseParser p;
    CHECK(p.feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n") ==
          State::Complete);
    CHECK_FALSE(p.take().keep_alive);
    CHECK(p.feed("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok") == State::Complete);
    CHECK_FALSE(p.take().keep_alive);
    CHECK(p.feed("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n") ==
          State::Complete);
    CHECK(p.take().keep_alive);
}

TEST_CASE("without a Content-Length the body runs to the close") {
    ResponseParser p;
    CHECK(p.feed("HTTP/1.0 500 INTERNAL SERVER ERROR\r\nContent-Type: text/html\r\n\r\n<p>") ==
          State::Incomplete);
    CHECK(p.feed("oops</p>") == State::Incomplete);
    CHECK(p.finish() == State::Complete);
    const auto r = p.take();
    CHECK(r.status == 500);
    CHECK(r.body == "<p>oops</p>");
    CHECK_FALSE(r.keep_alive);
}

TEST_CASE("a close before the answer is whole is an error that says so") {
    ResponseParser p;
    CHECK(p.finish() == State::Error);
    CHECK(p.error() == "the server closed the connection without answering");
    p.reset();
    CHECK(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") == State::Incomplete);
    CHECK(p.finish() == State::Error);
    CHECK(p.error() == "the server closed the connection in the middle of its answer");
}

TEST_CASE("what is not an HTTP/1.x answer bench reads is an error, not a guess") {
    auto error_of = [](const std::string& wire) {
        ResponseParser p;
        REQUIRE(p.feed(wire) == State::Error);
        return p.error();
    };
    CHECK(error_of("SSH-2.0-OpenSSH_9.2\r\n\r\n").find("not an HTTP/1.x answer") == 0);
    CHECK(error_of("HTTP/1.1 2x0 OK\r\n\r\n").find("status code is not a number") !=
          std::string::npos);
    CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").find("Content-Length") !=
          std::string::npos);
    CHECK(
        error_of("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n").find("Content-Length") !=
        std::string::npos);
    CHECK(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").find("chunked") !=
          std::string::npos);
    CHECK(error_of(std::string(ResponseParser::kMaxHeadBytes + 1, 'a'))
              .find("header section is too large") != std::string::npos);
}
