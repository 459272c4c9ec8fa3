// The order service's HTTP server: one thread, epoll, every connection non-blocking.
//
// Why not cpp-httplib's server: it gives each connection a thread, and a /place-order or a
// /orders request holds its thread while it waits for the broker's ack or the order's outcome.
// At 64 connections that was 64 threads, and half the order service's CPU went to waking them
// (3 futex calls, a poll and ~3 context switches per order). Here a request is read, handed to
// the handler, and the loop goes on; the handler answers through a Responder from whichever
// thread has the answer (the bus publisher's, the read model's), and the loop writes it. Many
// answers that become ready together cost one wake-up.
//
// It keeps the limits the threaded server had, enforced per connection by the loop:
//   - a request deadline, from a request's first byte until its head and body are read (a
//     client dripping bytes is cut off and logged); time in the handler and idle keep-alive
//     are not counted;
//   - the head's limits (RequestLimits: 414, 431), framing refusals (400, 411, 413, 415): the
//     answer is a JSON error, then a lingering close so the client reads it before any reset;
//   - an idle keep-alive connection is closed after 5 s, a client that stops reading its answer
//     after 5 s.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "http_request.hpp"

namespace op::order {

class HttpLoop {
    struct Answers;

public:
    // Answers one request, once, from any thread. Answering a connection that has gone (the
    // client left, the server stopped) does nothing.
    class Responder {
    public:
        void operator()(HttpResponse response) const;

    private:
        friend class HttpLoop;
        Responder(std::shared_ptr<Answers> answers, std::uint64_t connection)
            : answers_(std::move(answers)), connection_(connection) {}
        std::shared_ptr<Answers> answers_;
        std::uint64_t connection_;
    };

    // Called on the loop's thread for every request read whole; it must not block (hand slow
    // work to another thread and answer from there).
    using Handler = std::function<void(HttpRequest&&, Responder)>;

    // Binds and listens (port 0: a free one); throws with a clear message when it cannot.
    HttpLoop(const std::string& host, int port, RequestLimits limits, std::size_t max_connections,
             Handler handler);
    ~HttpLoop();
    HttpLoop(const HttpLoop&) = delete;
    HttpLoop& operator=(const HttpLoop&) = delete;

    [[nodiscard]] int port() const { return port_; }

    // Serves on the calling thread until `stop` is set, calling `tick` every ~50 ms (for the
    // handler's own deadlines). Then stops accepting, gives requests being handled up to a
    // second to be answered, and closes every connection.
    void run(const std::atomic<bool>& stop, const std::function<void()>& tick);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int port_ = 0;
};

}  // namespace op::order
