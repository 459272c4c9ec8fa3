// An HTTP/1.x response read incrementally off a non-blocking socket: bench's event loop feeds
// it whatever bytes arrived and learns when one whole response is there. It knows what the two
// servers bench drives send (ours: HTTP/1.1 with Content-Length, kept alive; the original's
// Werkzeug: HTTP/1.0 or "Connection: close", body with Content-Length or up to the close).
// Chunked bodies are reported as an error rather than guessed at.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace op::bench {

struct HttpResponse {
    int status = 0;
    std::string body;
    bool keep_alive = true;  // false: the server closes the connection after this answer
};

class ResponseParser {
public:
    enum class State { Incomplete, Complete, Error };

    // The largest head and body accepted: far above anything either server answers, so a
    // runaway peer is an error and not an unbounded buffer.
    static constexpr std::size_t kMaxHeadBytes = 64 * 1024;
    static constexpr std::size_t kMaxBodyBytes = 16 * 1024 * 1024;

    // Appends what arrived. Bytes past the end of this response are kept for the next one.
    State feed(std::string_view bytes);
    // The peer closed the connection: a body read up to the close is complete now; anything
    // else unfinished is an error.
    State finish();

    State state() const { return state_; }
    const std::string& error() const { return error_; }
    // The complete response; the parser then starts on the next one (with the kept bytes).
    HttpResponse take();
    // Starts over, dropping everything buffered (the connection was closed).
    void reset();

private:
    State parse();
    void start_next();  // forgets the answer's head and body, keeps the bytes buffered
    State fail(std::string why);

    std::string buf_;
    State state_ = State::Incomplete;
    std::string error_;
    bool have_head_ = false;
    std::size_t body_start_ = 0;
    bool until_close_ = false;  // no Content-Length: the body runs to the connection's close
    std::size_t content_length_ = 0;
    HttpResponse response_;
};

}  // namespace op::bench
