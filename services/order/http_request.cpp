#include "http_request.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "op/http/header_text.hpp"

namespace op::order {
namespace {

using http::iequals;
using http::trim;

constexpr std::string_view kMalformed = "bad request: a malformed request line or header section";
// Room on the request line for the method, two spaces and "HTTP/1.1" around the target.
constexpr std::size_t kRequestLineExtra = 32;

// RFC 9110 tchar: what a method or a header name is made of.
bool is_token(std::string_view s) {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return std::isalnum(u) ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    });
}

// Whether a comma-separated header value (Connection) lists `token`.
bool lists(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        const auto comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 202: return "Accepted";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Payload Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Entity";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

}  // namespace

std::string_view HttpRequest::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) return v;
    }
    return {};
}

std::size_t HttpRequest::header_count(std::string_view name) const {
    return static_cast<std::size_t>(std::count_if(
        headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); }));
}

const std::string* HttpRequest::param(const std::string& name) const {
    const auto it = query.find(name);
    return it == query.end() ? nullptr : &it->second;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) return std::nullopt;
            const int hi = hex_digit(text[i + 1]);
            const int lo = hex_digit(text[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

void RequestReader::refuse(int status, std::string error) {
    state_ = State::Refused;
    refusal_ = {status, std::move(error)};
}

std::size_t RequestReader::consume(std::string_view input) {
    std::size_t taken = 0;
    if (state_ == State::Head) {
        while (taken < input.size()) {
            const char c = input[taken];
            if (!request_line_done_) {
                // Empty lines before a request are ignored (RFC 9112 2.2): some clients end a
                // body with an extra CRLF.
                if (line_len_ == 0 && (c == '\r' || c == '\n') && head_.empty()) {
                    ++taken;
                    continue;
                }
                if (c != '\n' && line_len_ >= limits_.max_target + kRequestLineExtra) {
                    refuse(414, "the URL is too long");
                    return taken;
                }
            } else {
                if (header_bytes_ + 1 > limits_.max_header_bytes) {
                    refuse(431, fmt::format("request header fields too large: the header "
                                            "section is over {} bytes",
                                            limits_.max_header_bytes));
                    return taken;
                }
                if (c != '\n' && line_len_ + 1 >= limits_.max_header_line) {
                    refuse(431, fmt::format("request header fields too large: a header line is "
                                            "over {} bytes",
                                            limits_.max_header_line));
                    return taken;
                }
                const bool blank = line_len_ == 1 && head_.back() == '\r';
                if (c == '\n' && !blank && header_lines_ + 1 > limits_.max_header_count) {
                    refuse(431, fmt::format("request header fields too large: more than {} "
                                            "header lines",
                                            limits_.max_header_count));
                    return taken;
                }
                ++header_bytes_;
            }
            head_.push_back(c);
            ++taken;
            if (c != '\n') {
                ++line_len_;
                continue;
            }
            const bool blank = line_len_ == 1 && head_[head_.size() - 2] == '\r';
            line_len_ = 0;
            if (!request_line_done_) {
                request_line_done_ = true;
            } else if (blank) {
                consumed_ += taken;
                head_complete();
                if (state_ != State::Body) return taken;
                input.remove_prefix(taken);
                const std::size_t body = std::min(input.size(), body_left_);
                request_.body.append(input.substr(0, body));
                body_left_ -= body;
                consumed_ += body;
                if (body_left_ == 0) state_ = State::Done;
                return taken + body;
            } else {
                ++header_lines_;
            }
        }
        consumed_ += taken;
        return taken;
    }
    if (state_ == State::Body) {
        taken = std::min(input.size(), body_left_);
        request_.body.append(input.substr(0, taken));
        body_left_ -= taken;
        consumed_ += taken;
        if (body_left_ == 0) state_ = State::Done;
    }
    return taken;
}

void RequestReader::head_complete() {
    std::string_view head(head_);
    auto next_line = [&]() -> std::optional<std::string_view> {
        const auto end = head.find('\n');
        if (end == std::string_view::npos || end == 0 || head[end - 1] != '\r') {
            return std::nullopt;  // every line ends in CRLF
        }
        auto line = head.substr(0, end - 1);
        head.remove_prefix(end + 1);
        return line;
    };
    const auto request_line = next_line();
    if (!request_line) return refuse(400, std::string(kMalformed));
    const auto sp1 = request_line->find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : request_line->find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos ||
        request_line->find(' ', sp2 + 1) != std::string_view::npos) {
        return refuse(400, std::string(kMalformed));
    }
    const auto method = request_line->substr(0, sp1);
    const auto target = request_line->substr(sp1 + 1, sp2 - sp1 - 1);
    const auto version = request_line->substr(sp2 + 1);
    if (!is_token(method) || target.empty()) return refuse(400, std::string(kMalformed));
    bool http10 = false;
    if (version == "HTTP/1.0") {
        http10 = true;
    } else if (version != "HTTP/1.1") {
        if (version.size() == 8 && version.substr(0, 5) == "HTTP/" &&
            std::isdigit(static_cast<unsigned char>(version[5])) && version[6] == '.' &&
            std::isdigit(static_cast<unsigned char>(version[7]))) {
            return refuse(505, fmt::format("HTTP version {} is not supported: use HTTP/1.1",
                                           version));
        }
        return refuse(400, std::string(kMalformed));
    }
    if (target.size() > limits_.max_target) return refuse(414, "the URL is too long");
    if (target.front() != '/') return refuse(400, std::string(kMalformed));
    const auto question = target.find('?');
    auto path = percent_decode(target.substr(0, question), false);
    if (!path) return refuse(400, "bad request: a broken percent-escape in the URL");
    request_.method = std::string(method);
    request_.path = std::move(*path);
    if (question != std::string_view::npos) {
        auto query = target.substr(question + 1);
        while (!query.empty()) {
            const auto amp = query.find('&');
            const auto pair = query.substr(0, amp);
            if (!pair.empty()) {
                const auto eq = pair.find('=');
                auto key = percent_decode(pair.substr(0, eq), true);
                auto value = percent_decode(
                    eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
                if (!key || !value) {
                    return refuse(400, "bad request: a broken percent-escape in the URL");
                }
                request_.query.emplace(std::move(*key), std::move(*value));
            }
            if (amp == std::string_view::npos) break;
            query.remove_prefix(amp + 1);
        }
    }
    while (!head.empty()) {
        const auto line = next_line();
        if (!line) return refuse(400, std::string(kMalformed));
        if (line->empty()) break;  // the blank line that ends the head
        const auto colon = line->find(':');
        // No space before the colon, and no line folded onto the one before (RFC 9112 5).
        if (colon == std::string_view::npos || !is_token(line->substr(0, colon))) {
            return refuse(400, std::string(kMalformed));
        }
        const auto value = trim(line->substr(colon + 1));
        if (value.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos) {
            return refuse(400, std::string(kMalformed));
        }
        request_.headers.emplace_back(std::string(line->substr(0, colon)), std::string(value));
    }

    // Framing a proxy and this server could read differently is refused outright (request
    // smuggling): several Content-Lengths, or one that is not a plain number. Chunked and
    // compressed bodies are refused before they are read: orders are small, and every client
    // can send a Content-Length.
    const auto lengths = request_.header_count("Content-Length");
    if (lengths > 1) return refuse(400, "more than one Content-Length header");
    std::uint64_t length = 0;
    if (lengths == 1) {
        const auto text = request_.header("Content-Length");
        if (text.empty() || text.size() > 18 ||
            text.find_first_not_of("0123456789") != std::string_view::npos) {
            return refuse(400, "Content-Length must be a non-negative integer");
        }
        for (const char c : text) length = length * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (request_.header_count("Transfer-Encoding") > 0) {
        return refuse(411, "send the body with a Content-Length header; chunked transfer "
                           "encoding is not accepted");
    }
    const auto encoding = request_.header("Content-Encoding");
    if (!encoding.empty() && !iequals(encoding, "identity")) {
        return refuse(415, fmt::format("Content-Encoding \"{}\" is not accepted: send the JSON "
                                       "body uncompressed",
                                       encoding.substr(0, 64)));
    }
    if (length > limits_.max_body_bytes) {
        return refuse(413, fmt::format("request body is too large (limit: {} bytes)",
                                       limits_.max_body_bytes));
    }
    const auto connection = request_.header("Connection");
    request_.keep_alive = http10 ? lists(connection, "keep-alive") : !lists(connection, "close");
    expect_continue_ = !http10 && length > 0 && iequals(request_.header("Expect"), "100-continue");
    body_left_ = static_cast<std::size_t>(length);
    state_ = body_left_ == 0 ? State::Done : State::Body;
}

HttpRequest RequestReader::take() {
    HttpRequest out = std::move(request_);
    request_ = HttpRequest{};
    state_ = State::Head;
    head_.clear();
    line_len_ = 0;
    request_line_done_ = false;
    header_bytes_ = 0;
    header_lines_ = 0;
    body_left_ = 0;
    expect_continue_ = false;
    consumed_ = 0;
    return out;
}

std::string serialize(const HttpResponse& response) {
    std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                                  response.status, reason_phrase(response.status),
                                  response.content_type, response.body.size());
    for (const auto& [name, value] : response.headers) {
        out.append(name).append(": ").append(value).append("\r\n");
    }
    if (response.close) out.append("Connection: close\r\n");
    out.append("\r\n").append(response.body);
    return out;
}

}  // namespace op::order
