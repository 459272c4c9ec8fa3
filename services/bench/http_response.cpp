#include "http_response.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "op/http/header_text.hpp"

namespace op::bench {
namespace {

using http::iequals;
using http::trim;

bool icontains(std::string_view haystack, std::string_view needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                       [](char x, char y) {
                           return std::tolower(static_cast<unsigned char>(x)) ==
                                  std::tolower(static_cast<unsigned char>(y));
                       }) != haystack.end();
}

}  // namespace

ResponseParser::State ResponseParser::feed(std::string_view bytes) {
    if (state_ == State::Error) return state_;
    buf_.append(bytes);
    return state_ == State::Complete ? state_ : parse();
}

ResponseParser::State ResponseParser::finish() {
    if (state_ != State::Incomplete) return state_;
    if (have_head_ && until_close_) {
        response_.body = buf_.substr(body_start_);
        buf_.clear();
        return state_ = State::Complete;
    }
    return fail(buf_.empty() ? "the server closed the connection without answering"
                             : "the server closed the connection in the middle of its answer");
}

HttpResponse ResponseParser::take() {
    HttpResponse out = std::move(response_);
    start_next();
    if (!buf_.empty()) parse();
    return out;
}

void ResponseParser::reset() {
    buf_.clear();
    error_.clear();
    start_next();
}

void ResponseParser::start_next() {
    response_ = {};
    have_head_ = false;
    until_close_ = false;
    content_length_ = 0;
    body_start_ = 0;
    state_ = State::Incomplete;
}

ResponseParser::State ResponseParser::fail(std::string why) {
    error_ = std::move(why);
    return state_ = State::Error;
}

ResponseParser::State ResponseParser::parse() {
    if (!have_head_) {
        const auto end = buf_.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (buf_.size() > kMaxHeadBytes)
                return fail("the answer's header section is too large");
            return state_ = State::Incomplete;
        }
        const std::string_view head(buf_.data(), end);
        auto line_end = head.find("\r\n");
        const std::string_view status_line = head.substr(0, line_end);
        // "HTTP/1.1 200 OK"
        if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
            (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ') {
            return fail("not an HTTP/1.x answer: \"" + std::string(status_line.substr(0, 40)) +
                        "\"");
        }
        int status = 0;
        const auto code = status_line.substr(9, 3);
        const auto [p, ec] = std::from_chars(code.data(), code.data() + code.size(), status);
        if (ec != std::errc() || p != code.data() + code.size() || status < 100) {
            return fail("the answer's status code is not a number: \"" + std::string(code) + "\"");
        }
        response_.status = status;
        response_.keep_alive = status_line[7] == '1';
        bool have_length = false;
        while (line_end != std::string_view::npos) {
            const auto start = line_end + 2;
            line_end = head.find("\r\n", start);
            const auto line =
                head.substr(start, line_end == std::string_view::npos ? std::string_view::npos
                                                                      : line_end - start);
            const auto colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            const auto name = trim(line.substr(0, colon));
            const auto value = trim(line.substr(colon + 1));
            if (iequals(name, "Content-Length")) {
                std::size_t n = 0;
                const auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), n);
                if (e != std::errc() || q != value.data() + value.size() || n > kMaxBodyBytes) {
                    return fail("the answer's Content-Length is not a size bench accepts: \"" +
                                std::string(value.substr(0, 40)) + "\"");
                }
                content_length_ = n;
                have_length = true;
            } else if (iequals(name, "Transfer-Encoding") && !iequals(value, "identity")) {
                return fail("the answer is sent with Transfer-Encoding \"" +
                            std::string(value.substr(0, 40)) + "\", which bench does not read");
            } else if (iequals(name, "Connection")) {
                if (icontains(value, "close"))
                    response_.keep_alive = false;
                else if (icontains(value, "keep-alive"))
                    response_.keep_alive = true;
            }
        }
        if (!have_length && status != 204 && status != 304 && status >= 200) {
            until_close_ = true;
            response_.keep_alive = false;
        }
        have_head_ = true;
        body_start_ = end + 4;
    }
    const std::size_t have = buf_.size() - body_start_;
    if (until_close_) {
        if (have > kMaxBodyBytes) return fail("the answer's body is too large");
        return state_ = State::Incomplete;
    }
    if (have < content_length_) return state_ = State::Incomplete;
    response_.body = buf_.substr(body_start_, content_length_);
    buf_.erase(0, body_start_ + content_length_);
    return state_ = State::Complete;
}

}  // namespace op::bench
