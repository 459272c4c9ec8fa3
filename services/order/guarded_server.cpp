#include "guarded_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string_view>

#include <spdlog/spdlog.h>

#include "op/runtime/rate_limited_log.hpp"

namespace op::order {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int poll_ms(Clock::duration d) {
    const auto ms = std::chrono::ceil<milliseconds>(d).count();
    return static_cast<int>(std::clamp<std::int64_t>(ms, 0, 60'000));
}

// One line per cut-off connection, but many slow clients at once must not flood the log.
runtime::RateLimitedLog& cut_log() {
    static runtime::RateLimitedLog log("slow connections cut off");
    return log;
}

void ip_and_port(const sockaddr_storage& addr, std::string& ip, int& port) {
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (addr.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
        inet_ntop(AF_INET, &in.sin_addr, text.data(), text.size());
        port = ntohs(in.sin_port);
    } else if (addr.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
        inet_ntop(AF_INET6, &in6.sin6_addr, text.data(), text.size());
        port = ntohs(in6.sin6_port);
    }
    ip = text.data();
}

// The connection as httplib's process_request sees it. Reads are buffered (httplib reads the
// head one byte at a time) and kept across requests, so pipelined bytes are not lost.
class GuardedStream final : public httplib::Stream {
public:
    GuardedStream(socket_t sock, const RequestLimits& limits, Clock::duration read_timeout,
                  Clock::duration write_timeout)
        : sock_(sock),
          limits_(limits),
          read_timeout_(read_timeout),
          write_timeout_(write_timeout) {}

    // Waits for the next request's first byte (or the peer closing) up to the keep-alive
    // timeout, giving up early once the server stops listening.
    bool wait_for_request(Clock::duration idle, const std::atomic<socket_t>& server_socket) {
        if (off_ < len_) return true;
        const auto until = Clock::now() + idle;
        while (server_socket != INVALID_SOCKET) {
            const auto left = until - Clock::now();
            if (left <= Clock::duration::zero()) return false;
            pollfd p{sock_, POLLIN, 0};
            const int r =
                ::poll(&p, 1, poll_ms(std::min<Clock::duration>(left, milliseconds(100))));
            if (r > 0) return true;
            if (r < 0 && errno != EINTR) return false;
        }
        return false;
    }

    void begin_request() {
        started_ = Clock::now();
        deadline_ = started_ + limits_.request_timeout;
        in_head_ = true;
        request_line_done_ = false;
        line_len_ = 0;
        header_bytes_ = 0;
        header_lines_ = 0;
        request_bytes_ = 0;
        refusal_.reset();
        close_after_response_ = false;
    }

    // A connection is used for another request only if this one was read cleanly and no
    // answer asked to close it (refusals leave unread bytes behind).
    [[nodiscard]] bool reusable() const { return !broken_ && !close_after_response_; }
    // Refused before its request was read whole: the client may still be sending.
    [[nodiscard]] bool left_input_unread() const {
        return !cut_ && (refusal_ || broken_read_ == 0 || close_after_response_);
    }
    void close_after_response() { close_after_response_ = true; }
    [[nodiscard]] const std::optional<std::string>& header_refusal() const { return refusal_; }

    bool is_readable() const override {
        if (off_ < len_) return true;
        if (broken_) return false;
        if (!out_.empty() && !flush()) return false;
        pollfd p{sock_, POLLIN, 0};
        const auto wait = std::min(read_timeout_, deadline_ - Clock::now());
        return ::poll(&p, 1, poll_ms(wait)) > 0;
    }

    bool is_writable() const override {
        if (cut_) return false;
        pollfd p{sock_, POLLOUT, 0};
        return ::poll(&p, 1, poll_ms(write_timeout_)) > 0;
    }

    ssize_t read(char* ptr, std::size_t size) override {
        if (broken_) return broken_read_;
        if (off_ == len_) {
            const ssize_t got = fill();
            if (got <= 0) return got;
        }
        const std::size_t available = std::min(size, len_ - off_);
        if (!in_head_) {
            std::memcpy(ptr, buf_.data() + off_, available);
            off_ += available;
            request_bytes_ += available;
            return static_cast<ssize_t>(available);
        }
        // The head, byte by byte: a limit is enforced at the byte that crosses it, so httplib
        // never holds more of an oversized header section than the limit.
        std::size_t n = 0;
        while (n < available && in_head_) {
            const char c = buf_[off_];
            if (!request_line_done_) {
                // httplib reads the request line whole before comparing it with its URL limit
                // (414). Past a little more than that limit it is told the line ended, so it
                // answers 414 without buffering the rest.
                if (c != '\n' && line_len_ >= CPPHTTPLIB_REQUEST_URI_MAX_LENGTH + 2) {
                    broken_ = true;
                    broken_read_ = 0;
                    return static_cast<ssize_t>(n);
                }
            } else if (auto why = head_limit(c)) {
                refusal_ = std::move(why);
                broken_ = true;
                return n > 0 ? static_cast<ssize_t>(n) : -1;
            }
            ptr[n++] = c;
            ++off_;
            ++request_bytes_;
            advance_head(c);
        }
        if (n < available) {  // the head ended inside this read: the rest is body
            const std::size_t body = available - n;
            std::memcpy(ptr + n, buf_.data() + off_, body);
            off_ += body;
            request_bytes_ += body;
            n += body;
        }
        return static_cast<ssize_t>(n);
    }

    // Gathered, and sent by flush(): httplib writes a response's head and body in separate
    // calls, and two send(2)s per answer were a tenth of the order service's system calls.
    ssize_t write(const char* ptr, std::size_t size) override {
        if (cut_) return -1;
        out_.append(ptr, size);
        if (out_.size() >= kOutputBytes && !flush()) return -1;
        return static_cast<ssize_t>(size);
    }

    // Sends what write() gathered: after each response, and before any wait for the client
    // (an interim "100 Continue" must reach it before its body is awaited).
    bool flush() const {
        std::size_t sent = 0;
        bool ok = true;
        while (sent < out_.size()) {
            if (cut_) {
                ok = false;
                break;
            }
            const ssize_t n =
                ::send(sock_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n >= 0) {
                sent += static_cast<std::size_t>(n);
                continue;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                ok = false;
                break;
            }
            pollfd p{sock_, POLLOUT, 0};
            const int r = ::poll(&p, 1, poll_ms(write_timeout_));
            if (r == 0 || (r < 0 && errno != EINTR)) {
                ok = false;
                break;
            }
        }
        out_.clear();
        return ok;
    }

    // Asked for every request; the answer cannot change within a connection.
    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        if (!remote_) remote_ = address_of(::getpeername);
        ip = remote_->first;
        port = remote_->second;
    }

    void get_local_ip_and_port(std::string& ip, int& port) const override {
        if (!local_) local_ = address_of(::getsockname);
        ip = local_->first;
        port = local_->second;
    }

    socket_t socket() const override { return sock_; }

private:
    static constexpr std::size_t kOutputBytes = 64 * 1024;

    using Address = std::pair<std::string, int>;
    Address address_of(int (*query)(int, sockaddr*, socklen_t*)) const {
        sockaddr_storage addr{};
        socklen_t len = sizeof(addr);
        Address out{"", 0};
        if (query(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
            ip_and_port(addr, out.first, out.second);
        }
        return out;
    }

    // Waits for more bytes, bounded by the read timeout and the request deadline. Like recv:
    // > 0 bytes buffered, 0 the peer closed, -1 error, read timeout or deadline.
    ssize_t fill() {
        if (!out_.empty() && !flush()) {
            broken_ = true;
            return -1;
        }
        // Usually wait_for_request has just seen the bytes arrive: recv first, and poll only
        // when there is nothing yet.
        for (;;) {
            const auto now = Clock::now();
            if (now >= deadline_) return cut_off();
            const ssize_t n = ::recv(sock_, buf_.data(), buf_.size(), MSG_DONTWAIT);
            if (n > 0) {
                off_ = 0;
                len_ = static_cast<std::size_t>(n);
                return n;
            }
            if (n == 0) {
                broken_ = true;
                return 0;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) break;
            pollfd p{sock_, POLLIN, 0};
            const int r = ::poll(&p, 1, poll_ms(std::min(read_timeout_, deadline_ - now)));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) break;
            if (r == 0) {
                if (Clock::now() >= deadline_) return cut_off();
                break;  // httplib's read timeout: one read waited too long
            }
        }
        broken_ = true;
        return -1;
    }

    // The request did not arrive in time. shutdown() rather than close(): the socket stays
    // ours (the connection loop closes it), while the client sees the connection end now and
    // the 400 httplib tries to write for a half-read request goes nowhere.
    ssize_t cut_off() {
        broken_ = true;
        cut_ = true;
        ::shutdown(sock_, SHUT_RDWR);
        std::string ip;
        int port = 0;
        get_remote_ip_and_port(ip, port);
        const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - started_);
        cut_log().warn(fmt::format(
            "cut off slow client {}:{}: its request was not complete after {} ms ({} bytes "
            "read, {} not finished; --request-timeout-ms {})",
            ip, port, took.count(), request_bytes_, in_head_ ? "request line and headers" : "body",
            limits_.request_timeout.count()));
        return -1;
    }

    // Why byte `c` of the header section (after the request line) would take it over a limit.
    std::optional<std::string> head_limit(char c) const {
        if (header_bytes_ + 1 > limits_.max_header_bytes) {
            return fmt::format("the header section is over {} bytes", limits_.max_header_bytes);
        }
        // httplib refuses a line longer than this including its CRLF: once this many bytes
        // are not yet the end of the line, it will be.
        if (c != '\n' && line_len_ + 1 >= limits_.max_header_line) {
            return fmt::format("a header line is over {} bytes", limits_.max_header_line);
        }
        const bool ends_header = c == '\n' && !(line_len_ == 1 && last_ == '\r');
        if (ends_header && header_lines_ + 1 > limits_.max_header_count) {
            return fmt::format("more than {} header lines", limits_.max_header_count);
        }
        return std::nullopt;
    }

    void advance_head(char c) {
        if (request_line_done_) ++header_bytes_;
        if (c != '\n') {
            ++line_len_;
            last_ = c;
            return;
        }
        if (!request_line_done_) {
            request_line_done_ = true;
        } else if (line_len_ == 1 && last_ == '\r') {
            in_head_ = false;  // the blank line: what follows is the body
        } else {
            ++header_lines_;
        }
        line_len_ = 0;
        last_ = c;
    }

    socket_t sock_;
    const RequestLimits& limits_;
    Clock::duration read_timeout_;
    Clock::duration write_timeout_;
    std::array<char, 4096> buf_{};
    std::size_t off_ = 0;
    std::size_t len_ = 0;

    Clock::time_point started_{};
    Clock::time_point deadline_ = Clock::time_point::max();
    bool in_head_ = true;
    bool request_line_done_ = false;
    std::size_t line_len_ = 0;  // bytes of the current line before its '\n'
    char last_ = '\0';
    std::size_t header_bytes_ = 0;
    std::size_t header_lines_ = 0;
    std::size_t request_bytes_ = 0;
    std::optional<std::string> refusal_;
    bool broken_ = false;       // a read failed or was refused: the stream is mid-request
    ssize_t broken_read_ = -1;  // what reads return then: 0 reads as the end of the line
    bool cut_ = false;          // shut down for missing the deadline
    bool close_after_response_ = false;
    mutable std::string out_;  // written, not yet sent (flush)
    mutable std::optional<Address> remote_;
    mutable std::optional<Address> local_;
};

// Closing a socket with unread input sends a reset, which can destroy the answer (a 431, a
// 414) before the client reads it. So, like a web server's lingering close: end our side,
// then read and discard what the client still sends, for a short bounded while.
void drain_before_close(socket_t sock) {
    ::shutdown(sock, SHUT_WR);
    const auto until = Clock::now() + milliseconds(500);
    std::array<char, 4096> sink{};
    std::size_t drained = 0;
    while (drained < 1024 * 1024) {
        const auto left = until - Clock::now();
        if (left <= Clock::duration::zero()) return;
        pollfd p{sock, POLLIN, 0};
        const int r = ::poll(&p, 1, poll_ms(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        const ssize_t n = ::recv(sock, sink.data(), sink.size(), MSG_DONTWAIT);
        if (n == 0) return;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
            return;
        }
        drained += static_cast<std::size_t>(n);
    }
}

// The stream of the connection this worker thread serves, for the callbacks httplib runs on
// the same thread (they get the Request, not the Stream).
thread_local GuardedStream* t_stream = nullptr;

}  // namespace

GuardedServer::GuardedServer(RequestLimits limits) : limits_(limits) {
    // httplib 0.11 puts "Connection: close" on the answer but keeps reading the connection; a
    // refusal that leaves the body unread must really end it. And an answer on a connection
    // that ends (a request it could not read whole) says so.
    set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
        if (!t_stream) return;
        if (res.get_header_value("Connection") == "close") {
            t_stream->close_after_response();
        } else if (!t_stream->reusable()) {
            res.set_header("Connection", "close");
        }
    });
}

std::optional<std::string> GuardedServer::header_refusal() {
    return t_stream ? t_stream->header_refusal() : std::nullopt;
}

void GuardedServer::flush_log() { cut_log().tick(); }

// httplib's own loop (keep-alive, count, close) around httplib's process_request, with the
// guarded stream. The socket is closed only here, after the stream is gone, and nothing else
// holds it: no other thread can act on a descriptor number the kernel has handed out again.
bool GuardedServer::process_and_close_socket(socket_t sock) {
    bool ret = false;
    {
        const auto to_duration = [](time_t sec, time_t usec) {
            return std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(sec) +
                                                               std::chrono::microseconds(usec));
        };
        GuardedStream stream(sock, limits_, to_duration(read_timeout_sec_, read_timeout_usec_),
                             to_duration(write_timeout_sec_, write_timeout_usec_));
        t_stream = &stream;
        auto count = keep_alive_max_count_;
        while (count > 0 && svr_sock_ != INVALID_SOCKET &&
               stream.wait_for_request(std::chrono::seconds(keep_alive_timeout_sec_), svr_sock_)) {
            stream.begin_request();
            bool connection_closed = false;
            ret = process_request(stream, count == 1, connection_closed, nullptr);
            if (!stream.flush()) ret = false;
            if (!ret || connection_closed || !stream.reusable()) break;
            --count;
        }
        t_stream = nullptr;
        if (stream.left_input_unread()) drain_before_close(sock);
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ret;
}

}  // namespace op::order
