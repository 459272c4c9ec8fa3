#include "http_loop.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "op/runtime/rate_limited_log.hpp"

namespace op::order {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kKeepAliveIdle = std::chrono::seconds(5);
constexpr auto kWriteStall = std::chrono::seconds(5);
// A lingering close: after our last answer, what the client still sends is read and dropped
// for this long (or this much), so closing with unread input does not reset the connection
// and destroy the answer before the client reads it.
constexpr auto kLinger = milliseconds(500);
constexpr std::size_t kLingerBytes = 1024 * 1024;
constexpr auto kSweepInterval = milliseconds(50);
constexpr auto kStopGrace = std::chrono::seconds(1);
constexpr std::uint64_t kListenerId = 0;
constexpr std::uint64_t kWakeId = 1;

// One line per cut-off connection, but many slow clients at once must not flood the log.
runtime::RateLimitedLog& cut_log() {
    static runtime::RateLimitedLog log("slow connections cut off");
    return log;
}

runtime::RateLimitedLog& refused_connection_log() {
    static runtime::RateLimitedLog log("connections refused");
    return log;
}

std::string peer_of(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "unknown peer";
    std::array<char, INET6_ADDRSTRLEN> text{};
    int port = 0;
    if (addr.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
        inet_ntop(AF_INET, &in.sin_addr, text.data(), text.size());
        port = ntohs(in.sin_port);
    } else if (addr.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
        inet_ntop(AF_INET6, &in6.sin6_addr, text.data(), text.size());
        port = ntohs(in6.sin6_port);
    }
    return fmt::format("{}:{}", text.data(), port);
}

HttpResponse refusal_answer(const Refusal& refusal) {
    HttpResponse r;
    r.status = refusal.status;
    r.body = nlohmann::json{{"status", "error"}, {"error", refusal.error}}.dump();
    r.close = true;
    return r;
}

}  // namespace

// Answers handed over by responders, for the loop to write. A responder on the loop's own
// thread (a handler answering at once) only queues: the loop takes the queue after each batch
// of events. Any other thread also wakes the loop, once per non-empty queue.
struct HttpLoop::Answers {
    std::mutex mu;
    std::vector<std::pair<std::uint64_t, HttpResponse>> queue;  // guarded by mu
    bool closed = false;                                        // guarded by mu
    int wake_fd = -1;
    std::atomic<std::thread::id> loop_thread{};
};

void HttpLoop::Responder::operator()(HttpResponse response) const {
    bool wake = false;
    {
        std::lock_guard lock(answers_->mu);
        if (answers_->closed) return;
        wake = answers_->queue.empty() && std::this_thread::get_id() != answers_->loop_thread;
        answers_->queue.emplace_back(connection_, std::move(response));
    }
    if (wake) {
        const std::uint64_t one = 1;
        // A full counter still leaves the loop woken, so a failed write is fine.
        [[maybe_unused]] auto n = ::write(answers_->wake_fd, &one, sizeof one);
    }
}

struct HttpLoop::Impl {
    enum class Phase {
        Reading,    // reading a request (or waiting for the next one)
        Handling,   // a request is with the handler; its answer is not back yet
        Lingering,  // answered, our side shut down; reading what the client still sends
    };

    struct Connection {
        Connection(int fd_, std::uint64_t id_, const RequestLimits& limits)
            : fd(fd_), id(id_), reader(limits) {}
        int fd;
        std::uint64_t id;
        std::string in;  // received, not yet consumed: in[in_at..]
        std::size_t in_at = 0;
        std::string out;  // to send: out[out_at..]
        std::size_t out_at = 0;
        RequestReader reader;
        Phase phase = Phase::Reading;
        bool keep_alive = true;     // of the request being handled
        bool continue_sent = false;
        bool peer_closed = false;   // the client sent its end of stream
        bool read_paused = false;   // input buffer full: resumed after the next answer
        bool close_after_write = false;
        Clock::time_point request_started{};
        Clock::time_point idle_since{};
        Clock::time_point write_stalled_since{};
        Clock::time_point linger_until{};
        std::size_t lingered_bytes = 0;

        [[nodiscard]] std::string_view unread() const {
            return std::string_view(in).substr(in_at);
        }
    };

    RequestLimits limits;
    std::size_t max_connections;
    Handler handler;
    int listen_fd = -1;
    int epoll_fd = -1;
    std::shared_ptr<Answers> answers = std::make_shared<Answers>();
    std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections;
    std::uint64_t next_id = 2;
    bool accepting = true;
    Clock::time_point accept_paused_until{};
    std::size_t input_cap;
    std::array<char, 16 * 1024> scratch{};

    Impl(RequestLimits limits_, std::size_t max_connections_, Handler handler_)
        : limits(limits_),
          max_connections(max_connections_),
          handler(std::move(handler_)),
          // A whole request at its limits, plus a little pipelined after it.
          input_cap(limits.max_target + limits.max_header_bytes + limits.max_body_bytes +
                    16 * 1024) {}

    ~Impl() {
        for (auto& [id, c] : connections) ::close(c->fd);
        if (listen_fd >= 0) ::close(listen_fd);
        if (epoll_fd >= 0) ::close(epoll_fd);
        if (answers->wake_fd >= 0) ::close(answers->wake_fd);
    }

    int listen_on(const std::string& host, int port) {
        epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
        answers->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (epoll_fd < 0 || answers->wake_fd < 0) {
            throw std::runtime_error(fmt::format("cannot create the HTTP event loop: {}",
                                                 std::strerror(errno)));
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
            throw std::runtime_error(fmt::format(
                "cannot listen on {}: not an IPv4 address (use e.g. 127.0.0.1 or 0.0.0.0)", host));
        }
        listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        // SO_REUSEADDR so a restart binds past TIME_WAIT; not SO_REUSEPORT, which would let a
        // second order service share the port silently.
        int yes = 1;
        ::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
        if (listen_fd < 0 ||
            ::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listen_fd, SOMAXCONN) != 0) {
            throw std::runtime_error(fmt::format(
                "cannot listen on {}:{}: {} (in use? choose another with --port)", host, port,
                std::strerror(errno)));
        }
        socklen_t len = sizeof addr;
        ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
        watch(listen_fd, EPOLLIN, kListenerId);
        watch(answers->wake_fd, EPOLLIN, kWakeId);
        return ntohs(addr.sin_port);
    }

    void watch(int fd, std::uint32_t events, std::uint64_t id) const {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = id;
        if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            throw std::runtime_error(fmt::format("epoll_ctl: {}", std::strerror(errno)));
        }
    }

    void set_accepting(bool on) {
        if (on == accepting) return;
        accepting = on;
        epoll_event ev{};
        ev.events = on ? static_cast<std::uint32_t>(EPOLLIN) : 0U;
        ev.data.u64 = kListenerId;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, listen_fd, &ev);
    }

    void accept_all() {
        const auto now = Clock::now();
        for (int i = 0; i < 64; ++i) {
            const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    // Out of descriptors: the waiting connection stays in the backlog; look
                    // again shortly rather than spin on a listener that stays readable.
                    refused_connection_log().warn(fmt::format(
                        "cannot accept a connection: {} ({} open); trying again shortly",
                        std::strerror(errno), connections.size()));
                    set_accepting(false);
                    accept_paused_until = now + milliseconds(100);
                }
                return;
            }
            if (connections.size() >= max_connections) {
                refused_connection_log().warn(fmt::format(
                    "refused a connection from {}: {} are open (the limit)", peer_of(fd),
                    max_connections));
                ::close(fd);
                continue;
            }
            // One send per answer, but a "100 Continue" and its answer must not wait for the
            // client's delayed ACK (40 ms).
            int yes = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
            const auto id = next_id++;
            auto c = std::make_unique<Connection>(fd, id, limits);
            c->idle_since = now;
            try {
                watch(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, id);
            } catch (const std::exception& e) {
                spdlog::warn("cannot watch a new connection: {}", e.what());
                ::close(fd);
                continue;
            }
            connections.emplace(id, std::move(c));
        }
    }

    void close_connection(Connection& c) {
        ::close(c.fd);  // also takes it out of the epoll set
        connections.erase(c.id);
    }

    // Ends our side after the last answer and reads what the client still sends for a while.
    void linger(Connection& c) {
        ::shutdown(c.fd, SHUT_WR);
        c.phase = Phase::Lingering;
        c.linger_until = Clock::now() + kLinger;
        drain(c);
    }

    // In a lingering close: reads and drops input until the client closes, or enough.
    void drain(Connection& c) {
        for (;;) {
            const ssize_t n = ::recv(c.fd, scratch.data(), scratch.size(), 0);
            if (n > 0) {
                c.lingered_bytes += static_cast<std::size_t>(n);
                if (c.lingered_bytes < kLingerBytes) continue;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;
            }
            return close_connection(c);
        }
    }

    // Reads until the socket has nothing more (edge-triggered), the client closed, or the
    // input buffer holds as much as one request may need. A read shorter than asked for
    // means the socket is empty for now (the next bytes raise a new edge), unless the client
    // also closed (`to_end`): then read on to the end of stream.
    void read_input(Connection& c, bool to_end) {
        for (;;) {
            if (c.in.size() - c.in_at >= input_cap) {
                c.read_paused = true;
                return;
            }
            const ssize_t n = ::recv(c.fd, scratch.data(), scratch.size(), 0);
            if (n > 0) {
                // Drop what was consumed: all of it, or (a client that always has the next
                // request half sent) once it is the larger part, so the buffer stays bounded.
                if (c.in_at == c.in.size() || c.in_at >= c.in.size() / 2) {
                    c.in.erase(0, c.in_at);
                    c.in_at = 0;
                }
                c.in.append(scratch.data(), static_cast<std::size_t>(n));
                if (!to_end && static_cast<std::size_t>(n) < scratch.size()) return;
                continue;
            }
            if (n == 0) {
                c.peer_closed = true;
                return;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) c.peer_closed = true;
            return;
        }
    }

    // Returns false if the connection was closed. A client that stops reading is closed by
    // the sweep once no byte of its answer has gone out for kWriteStall.
    bool flush(Connection& c) {
        const auto was_at = c.out_at;
        while (c.out_at < c.out.size()) {
            const ssize_t n = ::send(c.fd, c.out.data() + c.out_at, c.out.size() - c.out_at,
                                     MSG_NOSIGNAL);
            if (n >= 0) {
                c.out_at += static_cast<std::size_t>(n);
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (c.write_stalled_since == Clock::time_point{} || c.out_at > was_at) {
                    c.write_stalled_since = Clock::now();
                }
                return true;
            }
            close_connection(c);
            return false;
        }
        c.out.clear();
        c.out_at = 0;
        c.write_stalled_since = {};
        if (c.close_after_write) {
            const auto id = c.id;
            linger(c);
            return connections.contains(id);
        }
        return true;
    }

    // Reads requests out of the buffered input and hands each to the handler, one at a time
    // (a pipelined request waits until the one before it is answered).
    void process(Connection& c) {
        const auto id = c.id;
        while (c.phase == Phase::Reading && !c.close_after_write) {
            if (!c.reader.started() && c.unread().empty()) break;
            if (!c.reader.started()) c.request_started = Clock::now();
            c.in_at += c.reader.consume(c.unread());
            switch (c.reader.state()) {
                case RequestReader::State::Head:
                    break;
                case RequestReader::State::Body:
                    if (c.reader.expects_continue() && !c.continue_sent) {
                        c.continue_sent = true;
                        c.out.append("HTTP/1.1 100 Continue\r\n\r\n");
                        if (!flush(c)) return;
                    }
                    break;
                case RequestReader::State::Refused:
                    // The rest of the input cannot be framed: answer, then close.
                    c.close_after_write = true;
                    c.out.append(serialize(refusal_answer(c.reader.refusal())));
                    flush(c);
                    return;
                case RequestReader::State::Done: {
                    auto request = c.reader.take();
                    c.keep_alive = request.keep_alive;
                    c.continue_sent = false;
                    c.phase = Phase::Handling;
                    handler(std::move(request), Responder(answers, id));
                    return;
                }
            }
            if (c.reader.state() == RequestReader::State::Head ||
                c.reader.state() == RequestReader::State::Body) {
                break;  // needs more bytes
            }
        }
        if (connections.contains(id) && c.phase == Phase::Reading && c.peer_closed) {
            // The client ended its side: nothing more can come (a request cut in half is
            // dropped; nothing was handed on). An answer still being written goes out first.
            if (c.out_at < c.out.size()) {
                c.close_after_write = true;
            } else {
                close_connection(c);
            }
        }
    }

    void on_event(std::uint64_t id, std::uint32_t events) {
        auto it = connections.find(id);
        if (it == connections.end()) return;
        Connection& c = *it->second;
        if (c.phase == Phase::Lingering) {
            drain(c);
            return;
        }
        if ((events & EPOLLOUT) && c.out_at < c.out.size() && !flush(c)) return;
        if (!connections.contains(id)) return;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            if (!c.read_paused) read_input(c, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
            process(c);
        }
    }

    void deliver(std::uint64_t id, HttpResponse&& response) {
        auto it = connections.find(id);
        if (it == connections.end() || it->second->phase != Phase::Handling) return;
        Connection& c = *it->second;
        response.close = response.close || !c.keep_alive || c.peer_closed;
        c.close_after_write = response.close;
        c.out.append(serialize(response));
        c.phase = Phase::Reading;
        c.idle_since = Clock::now();
        if (!flush(c) || !connections.contains(id)) return;
        if (c.close_after_write) return;
        if (c.read_paused) {
            c.read_paused = false;
            read_input(c, true);
        }
        process(c);
    }

    // Until none is left: writing one answer can hand a pipelined request to the handler,
    // whose answer is queued in turn.
    void deliver_answers() {
        std::vector<std::pair<std::uint64_t, HttpResponse>> ready;
        for (;;) {
            {
                std::lock_guard lock(answers->mu);
                ready.swap(answers->queue);
            }
            if (ready.empty()) return;
            for (auto& [id, response] : ready) deliver(id, std::move(response));
            ready.clear();
        }
    }

    void cut_off(Connection& c, Clock::time_point now) {
        const auto took = std::chrono::duration_cast<milliseconds>(now - c.request_started);
        cut_log().warn(fmt::format(
            "cut off slow client {}: its request was not complete after {} ms ({} bytes read, "
            "{} not finished; --request-timeout-ms {})",
            peer_of(c.fd), took.count(), c.reader.consumed(),
            c.reader.in_head() ? "request line and headers" : "body",
            limits.request_timeout.count()));
        ::shutdown(c.fd, SHUT_RDWR);
        close_connection(c);
    }

    void sweep(Clock::time_point now) {
        if (!accepting && now >= accept_paused_until) set_accepting(true);
        std::vector<Connection*> due;
        for (auto& [id, c] : connections) {
            const bool stalled = c->out_at < c->out.size() &&
                                 c->write_stalled_since != Clock::time_point{} &&
                                 now - c->write_stalled_since >= kWriteStall;
            const bool late = c->phase == Phase::Reading && c->reader.started() &&
                              now - c->request_started >= limits.request_timeout;
            const bool idle = c->phase == Phase::Reading && !c->reader.started() &&
                              c->unread().empty() && c->out_at == c->out.size() &&
                              now - c->idle_since >= kKeepAliveIdle;
            const bool lingered = c->phase == Phase::Lingering && now >= c->linger_until;
            if (stalled || late || idle || lingered) due.push_back(c.get());
        }
        for (Connection* c : due) {
            if (c->phase == Phase::Reading && c->reader.started() &&
                now - c->request_started >= limits.request_timeout) {
                cut_off(*c, now);
            } else {
                close_connection(*c);
            }
        }
        cut_log().tick();
        refused_connection_log().tick();
    }

    [[nodiscard]] bool handling() const {
        for (const auto& [id, c] : connections) {
            if (c->phase == Phase::Handling || c->out_at < c->out.size()) return true;
        }
        return false;
    }

    void run(const std::atomic<bool>& stop, const std::function<void()>& tick) {
        answers->loop_thread = std::this_thread::get_id();
        std::array<epoll_event, 256> events{};
        auto next_sweep = Clock::now() + kSweepInterval;
        std::optional<Clock::time_point> stop_by;
        for (;;) {
            if (stop.load() && !stop_by) {
                // Stop taking requests; give those in hand a moment to be answered.
                stop_by = Clock::now() + kStopGrace;
                ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
                ::close(listen_fd);
                listen_fd = -1;
                std::vector<Connection*> idle;
                for (auto& [id, c] : connections) {
                    if (c->phase != Phase::Handling) idle.push_back(c.get());
                }
                for (Connection* c : idle) close_connection(*c);
            }
            if (stop_by && (Clock::now() >= *stop_by || !handling())) break;
            const int timeout = static_cast<int>(std::max<std::int64_t>(
                0, std::chrono::ceil<milliseconds>(next_sweep - Clock::now()).count()));
            const int n = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()),
                                       timeout);
            if (n < 0 && errno != EINTR) {
                throw std::runtime_error(fmt::format("epoll_wait: {}", std::strerror(errno)));
            }
            for (int i = 0; i < n; ++i) {
                const auto id = events[static_cast<std::size_t>(i)].data.u64;
                const auto what = events[static_cast<std::size_t>(i)].events;
                if (id == kListenerId) {
                    if (listen_fd >= 0) accept_all();
                } else if (id == kWakeId) {
                    std::uint64_t count = 0;
                    [[maybe_unused]] auto r = ::read(answers->wake_fd, &count, sizeof count);
                } else {
                    on_event(id, what);
                }
                // Answers given inline by the handler go out with this batch.
            }
            deliver_answers();
            const auto now = Clock::now();
            if (now >= next_sweep) {
                next_sweep = now + kSweepInterval;
                tick();
                sweep(now);
                deliver_answers();
            }
        }
        {
            std::lock_guard lock(answers->mu);
            answers->closed = true;
            answers->queue.clear();
        }
        std::vector<Connection*> left;
        for (auto& [id, c] : connections) left.push_back(c.get());
        for (Connection* c : left) close_connection(*c);
    }
};

HttpLoop::HttpLoop(const std::string& host, int port, RequestLimits limits,
                   std::size_t max_connections, Handler handler)
    : impl_(std::make_unique<Impl>(limits, max_connections, std::move(handler))) {
    port_ = impl_->listen_on(host, port);
}

HttpLoop::~HttpLoop() = default;

void HttpLoop::run(const std::atomic<bool>& stop, const std::function<void()>& tick) {
    impl_->run(stop, tick);
}

}  // namespace op::order
