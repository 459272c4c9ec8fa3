// HTTP/1.1 requests as the order service's event loop reads them, and the answers it writes.
// Pure: bytes in, a request or a refusal out, so every limit is unit-tested without a socket.
//
// The reader is incremental: the loop hands it each chunk as it arrives, and every limit is
// enforced at the byte that crosses it, so an oversized head is refused before more of it is
// buffered, and a client dripping bytes costs a scan of each byte once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace op::order {

struct RequestLimits {
    // From a request's first byte until its head and body are read.
    std::chrono::milliseconds request_timeout{10000};
    // The header section after the request line, counting each line with its CRLF.
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_header_count = 100;
    // One header line with its CRLF.
    std::size_t max_header_line = 8192;
    // The request target (path and query).
    std::size_t max_target = 8192;
    std::size_t max_body_bytes = 64 * 1024;
};

struct HttpRequest {
    std::string method;
    std::string path;  // percent-decoded
    std::multimap<std::string, std::string> query;  // decoded; '+' is a space
    std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
    std::string body;
    bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only if asked

    // The first header of that name (case-insensitive), or "" if none.
    [[nodiscard]] std::string_view header(std::string_view name) const;
    [[nodiscard]] std::size_t header_count(std::string_view name) const;
    [[nodiscard]] const std::string* param(const std::string& name) const;
};

struct HttpResponse {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;  // extra ones, e.g. Retry-After
    bool close = false;  // end the connection after this answer
};

// Why a request is refused before any handler sees it: the status, and the error text of the
// JSON answer. Every refusal ends the connection (its framing can no longer be trusted).
struct Refusal {
    int status = 400;
    std::string error;
};

// Reads one request head at a time, then says how long a body follows.
class RequestReader {
public:
    explicit RequestReader(const RequestLimits& limits) : limits_(limits) {}

    enum class State { Head, Body, Done, Refused };

    // Takes bytes from the front of `input` (the connection's unread bytes): of the head while
    // in State::Head, of the body while in State::Body. Returns how many it took; the rest
    // belongs to the next request. A refused request takes nothing more.
    std::size_t consume(std::string_view input);

    [[nodiscard]] State state() const { return state_; }
    [[nodiscard]] bool in_head() const { return state_ == State::Head; }
    // Whether the client asked for "100 Continue" before it sends the body (State::Body).
    [[nodiscard]] bool expects_continue() const { return expect_continue_; }
    [[nodiscard]] const Refusal& refusal() const { return refusal_; }
    // The request once State::Done; take it with take(), which also resets for the next one.
    HttpRequest take();
    // Bytes of this request consumed so far (head and body).
    [[nodiscard]] std::size_t consumed() const { return consumed_; }
    [[nodiscard]] bool started() const { return consumed_ > 0; }

private:
    void refuse(int status, std::string error);
    void head_complete();

    RequestLimits limits_;
    State state_ = State::Head;
    std::string head_;  // the request line and header section as received
    std::size_t line_len_ = 0;  // bytes of the current line before its '\n'
    bool request_line_done_ = false;
    std::size_t header_bytes_ = 0;
    std::size_t header_lines_ = 0;
    std::size_t body_left_ = 0;
    bool expect_continue_ = false;
    std::size_t consumed_ = 0;
    HttpRequest request_;
    Refusal refusal_;
};

// The answer on the wire: status line, Content-Type, Content-Length, the extra headers, and
// "Connection: close" when the connection ends after it.
std::string serialize(const HttpResponse& response);

// "%41b+c" -> "Ab c" when `plus_is_space`; nullopt for a broken escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace op::order
