// An httplib::Server that bounds what a client may make it wait for and hold in memory while
// a request comes in, which httplib 0.11 does not: its read timeout is per read (one byte every
// few seconds keeps a worker thread forever) and it reads a header section of any size before
// looking at it.
//
// It serves each connection itself (the keep-alive loop of httplib's process_and_close_socket)
// with its own Stream, and hands each request to httplib's process_request, so routing,
// handlers and responses are httplib's. The Stream sees every byte httplib reads, which gives
// two bounds at the place they can be enforced (a watchdog thread shutting sockets down from
// outside would have to infer the phase from callbacks and race the socket's close):
//   - a request deadline: from the request's first byte until its head and body have been
//     read. Handlers do not read, so time spent in a handler (a /place-order waiting for its
//     outcome) is never cut, and neither is the idle wait between keep-alive requests (bounded
//     by httplib's keep-alive timeout). Past the deadline the connection is shut down and
//     logged (rate-limited).
//   - the header section: line length, total bytes and number of lines. Over any of them the
//     read fails before httplib buffers more; httplib then answers 400, which the error handler
//     turns into 431 using header_refusal(). (Debian's httplib is a compiled library: defining
//     CPPHTTPLIB_HEADER_MAX_LENGTH here would not change what it accepts.)
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include <httplib.h>

namespace op::order {

struct RequestLimits {
    // From a request's first byte until its head and body are read.
    std::chrono::milliseconds request_timeout{10000};
    // The header section after the request line, counting each line with its CRLF.
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_header_count = 100;
    // httplib's own limit for one header line, which the library was built with.
    std::size_t max_header_line = CPPHTTPLIB_HEADER_MAX_LENGTH;
};

class GuardedServer : public httplib::Server {
public:
    // Installs httplib's post-routing handler (it ends connections whose answer says
    // "Connection: close"): do not replace it.
    explicit GuardedServer(RequestLimits limits);

    // Inside a handler or callback on a worker thread: why the current request's header section
    // was refused (too long a line, too many bytes or lines), or nullopt if it was not.
    static std::optional<std::string> header_refusal();

    // Logs the count of cut-off connections held back by the rate limit; call now and then.
    void flush_log();

    [[nodiscard]] const RequestLimits& limits() const { return limits_; }

private:
    bool process_and_close_socket(socket_t sock) override;

    RequestLimits limits_;
};

}  // namespace op::order
