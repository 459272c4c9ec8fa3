#include "http_load.hpp"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <stdexcept>
#include <thread>
#include <vector>

#include "http_response.hpp"
#include "progress.hpp"
#include "stop.hpp"

namespace op::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Read by the progress bar while the loop runs.
struct Progress {
    std::atomic<std::uint64_t> answered{0};
    std::atomic<std::uint64_t> errors{0};
};

std::string order_id_of(const nlohmann::json& body) {
    const auto it = body.find("order_id");
    if (it == body.end()) return {};
    // The original system numbers its orders; ours names them.
    return it->is_string() ? it->get<std::string>() : it->dump();
}

// One keep-alive connection: its socket, the request it is sending and the answer it is
// reading. At most one request is in flight on it (no pipelining), as with a browser or a
// blocking client.
struct Connection {
    enum class Phase { Idle, Connecting, Sending, Waiting, Done };
    int fd = -1;
    Phase phase = Phase::Idle;
    std::size_t written = 0;  // bytes of the request already sent
    Clock::time_point due{};  // what the latency is measured from
    Clock::time_point deadline{};
    ResponseParser parser;
};

// All the connections on one thread, driven by epoll. One thread costs the machine far less
// than one blocking client thread per connection: on this 2-core VM 64 such threads took a
// quarter of the CPU the system under test needed.
class LoadLoop {
public:
    LoadLoop(const LoadOptions& options, Progress& progress, Clock::time_point start,
             Clock::time_point end)
        : options_(options),
          progress_(progress),
          start_(start),
          end_(end),
          // An open-loop run that fell behind still sends its backlog, but only for a while:
          // what is left after that is reported as not sent rather than stretching the run.
          hard_end_(end + (end - start) / 2 + std::chrono::seconds(2)),
          open_loop_(options.rate > 0),
          interval_(open_loop_
                        ? std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / options.rate))
                        : std::chrono::nanoseconds(0)),
          connections_(static_cast<std::size_t>(options.concurrency)) {
        request_ = fmt::format(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: op-bench\r\nAccept: */*\r\n"
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            options.path, options.host, options.port, options.body.size(), options.body);
        resolve();
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_ < 0) throw std::runtime_error(fmt::format("epoll_create1: {}", strerror(errno)));
        result_.latency.reserve(1 << 16);
    }
    ~LoadLoop() {
        for (auto& c : connections_) close_connection(c);
        if (epoll_ >= 0) ::close(epoll_);
    }
    LoadLoop(const LoadLoop&) = delete;
    LoadLoop& operator=(const LoadLoop&) = delete;

    struct Result {
        LatencySamples latency;
        std::uint64_t sent = 0;
        std::uint64_t answered = 0;
        std::uint64_t succeeded = 0;
        std::map<std::string, std::uint64_t> outcomes;
        std::map<std::string, std::uint64_t> errors;
        std::vector<Answer> answers;
        Clock::time_point last_answer{};
    };

    Result run() {
        std::this_thread::sleep_until(start_);
        for (std::size_t i = 0; i < connections_.size(); ++i) next(i);
        std::array<epoll_event, 256> ready{};
        auto next_sweep = Clock::now() + kSweepEvery;
        while (!stop_requested() && active() > 0) {
            const timespec timeout = wait_time();
            const int n = ::epoll_pwait2(epoll_, ready.data(), static_cast<int>(ready.size()),
                                         &timeout, nullptr);
            if (n < 0 && errno != EINTR) {
                throw std::runtime_error(fmt::format("epoll_pwait2: {}", strerror(errno)));
            }
            for (int k = 0; k < n; ++k) {
                on_ready(static_cast<std::size_t>(ready[k].data.u64), ready[k].events);
            }
            send_scheduled();
            if (const auto now = Clock::now(); now >= next_sweep) {
                time_out(now);
                next_sweep = now + kSweepEvery;
            }
        }
        return std::move(result_);
    }

private:
    static constexpr auto kSweepEvery = std::chrono::milliseconds(50);
    static constexpr auto kRetryPause = std::chrono::milliseconds(20);

    void resolve() {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* found = nullptr;
        const std::string port = std::to_string(options_.port);
        const int rc = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found);
        if (rc != 0 || found == nullptr) {
            throw std::runtime_error(
                fmt::format("cannot resolve {}: {}", options_.host, gai_strerror(rc)));
        }
        std::memcpy(&address_, found->ai_addr, found->ai_addrlen);
        address_len_ = found->ai_addrlen;
        family_ = found->ai_family;
        ::freeaddrinfo(found);
    }

    std::size_t active() const { return connections_.size() - retired_; }

    // How long epoll may sleep: to the next open-loop order's due time, to the nanosecond (a
    // millisecond timeout would send up to 1 ms late, and that would be measured as latency).
    timespec wait_time() const {
        auto until = Clock::now() + kSweepEvery;
        if (!scheduled_.empty()) until = std::min(until, scheduled_.front().due);
        const auto ns = std::max<std::int64_t>(
            0, std::chrono::duration_cast<std::chrono::nanoseconds>(until - Clock::now()).count());
        return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    }

    void error(std::string kind) {
        ++result_.errors[std::move(kind)];
        ++progress_.errors;
    }

    // The connection is free: give it its next order, or retire it when the run is over.
    void next(std::size_t i) {
        auto& c = connections_[i];
        c.phase = Connection::Phase::Idle;
        if (stop_requested()) {
            retire(i);
            return;
        }
        if (!open_loop_) {
            const auto now = Clock::now();
            if (now >= end_)
                retire(i);
            else
                send(i, now);
            return;
        }
        for (;;) {
            const std::uint64_t index = next_index_++;
            const auto due = start_ + interval_ * static_cast<std::int64_t>(index);
            if (due >= end_) {
                retire(i);
                return;
            }
            if (Clock::now() > hard_end_) {
                error("not sent: generator behind schedule");
                continue;
            }
            // Indices are taken in order, so the queue stays sorted by due time (in an open
            // loop nothing else is queued).
            scheduled_.push_back({i, due});
            return;
        }
    }

    void send_scheduled() {
        while (!scheduled_.empty() && scheduled_.front().due <= Clock::now()) {
            const auto [i, due] = scheduled_.front();
            scheduled_.pop_front();
            send(i, due);
        }
    }

    void retire(std::size_t i) {
        close_connection(connections_[i]);
        if (connections_[i].phase != Connection::Phase::Done) ++retired_;
        connections_[i].phase = Connection::Phase::Done;
    }

    void send(std::size_t i, Clock::time_point due) {
        auto& c = connections_[i];
        ++result_.sent;
        c.due = due;
        c.deadline = Clock::now() + options_.request_timeout;
        c.written = 0;
        if (c.fd < 0 && !open_connection(i)) return;
        if (c.phase != Connection::Phase::Connecting) write_request(i);
    }

    bool open_connection(std::size_t i) {
        auto& c = connections_[i];
        c.parser.reset();
        c.fd = ::socket(family_, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            fail(i, fmt::format("connection: cannot open a socket ({})", strerror(errno)));
            return false;
        }
        // The request goes out in one write, but an answer must never wait on Nagle.
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
        ev.data.u64 = i;
        ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
        if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&address_), address_len_) == 0) {
            c.phase = Connection::Phase::Sending;
            return true;
        }
        if (errno != EINPROGRESS) {
            fail(i, fmt::format("connection: cannot connect ({})", strerror(errno)));
            return false;
        }
        c.phase = Connection::Phase::Connecting;
        return true;
    }

    void watch(Connection& c, bool writable, std::size_t i) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP | (writable ? EPOLLOUT : 0u);
        ev.data.u64 = i;
        ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    }

    void write_request(std::size_t i) {
        auto& c = connections_[i];
        const bool was_waiting_for_writable = c.phase != Connection::Phase::Idle;
        while (c.written < request_.size()) {
            const auto n = ::send(c.fd, request_.data() + c.written, request_.size() - c.written,
                                  MSG_NOSIGNAL);
            if (n > 0) {
                c.written += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                c.phase = Connection::Phase::Sending;
                watch(c, true, i);
                return;
            }
            fail(i, fmt::format("connection: cannot send the request ({})", strerror(errno)));
            return;
        }
        if (was_waiting_for_writable) watch(c, false, i);
        c.phase = Connection::Phase::Waiting;
    }

    void on_ready(std::size_t i, std::uint32_t events) {
        auto& c = connections_[i];
        if (c.fd < 0) return;
        switch (c.phase) {
            case Connection::Phase::Connecting: {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) {
                    fail(i, fmt::format("connection: cannot connect ({})", strerror(err)));
                    return;
                }
                if ((events & EPOLLOUT) != 0) {
                    c.phase = Connection::Phase::Sending;
                    write_request(i);
                }
                return;
            }
            case Connection::Phase::Sending:
                if ((events & EPOLLOUT) != 0) write_request(i);
                // A server may answer (an error, say) before it has read the whole request.
                if (c.fd >= 0 && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 &&
                    (c.phase == Connection::Phase::Sending ||
                     c.phase == Connection::Phase::Waiting)) {
                    read_answer(i);
                }
                return;
            case Connection::Phase::Waiting:
                read_answer(i);
                return;
            case Connection::Phase::Idle:
            case Connection::Phase::Done:
                // A kept-alive connection the server closed while it had nothing to answer
                // (its idle timeout): open a new one for the next order.
                close_connection(c);
                return;
        }
    }

    void read_answer(std::size_t i) {
        auto& c = connections_[i];
        char buf[16384];
        for (;;) {
            const auto n = ::recv(c.fd, buf, sizeof buf, 0);
            ResponseParser::State state;
            if (n > 0) {
                state = c.parser.feed(std::string_view(buf, static_cast<std::size_t>(n)));
            } else if (n == 0) {
                state = c.parser.finish();
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            } else {
                fail(i, fmt::format("connection: cannot read the answer ({})", strerror(errno)));
                return;
            }
            if (state == ResponseParser::State::Error) {
                fail(i, "connection: " + c.parser.error());
                return;
            }
            if (state == ResponseParser::State::Complete) {
                const auto latency = Clock::now() - c.due;
                const auto response = c.parser.take();
                classify(response, latency);
                if (!response.keep_alive) close_connection(c);
                next(i);
                return;
            }
            if (n == 0) return;  // unreachable: finish() is Complete or Error
        }
    }

    // The request failed on its connection: counted, the connection closed (the next order
    // opens a new one), and the connection goes on with its next order.
    // A closed loop waits a little before its next order on that connection: a refused or
    // reset connection fails at once, and without a pause bench would hammer a server that is
    // down with tens of thousands of attempts a second. (An open loop keeps its schedule.)
    void fail(std::size_t i, std::string kind) {
        error(std::move(kind));
        close_connection(connections_[i]);
        if (open_loop_) {
            next(i);
            return;
        }
        if (stop_requested() || Clock::now() + kRetryPause >= end_) {
            retire(i);
            return;
        }
        connections_[i].phase = Connection::Phase::Idle;
        // Every pause is the same length, so the queue stays sorted by due time.
        scheduled_.push_back({i, Clock::now() + kRetryPause});
    }

    void close_connection(Connection& c) {
        if (c.fd >= 0) {
            ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
            ::close(c.fd);
            c.fd = -1;
        }
        c.parser.reset();
    }

    void time_out(Clock::time_point now) {
        for (std::size_t i = 0; i < connections_.size(); ++i) {
            const auto phase = connections_[i].phase;
            const bool in_flight = phase == Connection::Phase::Connecting ||
                                   phase == Connection::Phase::Sending ||
                                   phase == Connection::Phase::Waiting;
            if (in_flight && now >= connections_[i].deadline) {
                fail(i, fmt::format("connection: no answer within {} ms",
                                    options_.request_timeout.count()));
            }
        }
    }

    void classify(const HttpResponse& res, Clock::duration latency) {
        const auto body = nlohmann::json::parse(res.body, nullptr, false);
        const std::string status =
            body.is_object() && body.contains("status") && body["status"].is_string()
                ? body["status"].get<std::string>()
                : std::string();
        // POST /orders answers 202 "placed" once the order is durable: that is its answer, and
        // its latency is the time to durable, not to a decision.
        const bool accepted = options_.path == "/orders" && res.status == 202 && status == "placed";
        if (res.status == 202 && !accepted) {
            // Durable but undecided within the service's bound: not an answer to time.
            error("http 202 pending");
            if (options_.keep_answers)
                result_.answers.push_back({order_id_of(body), "pending", {}});
            return;
        }
        if (res.status != 200 && !accepted) {
            error(fmt::format("http {}", res.status));
            return;
        }
        if (status != "success" && status != "failed" && !accepted) {
            error("http 200 without a status");
            return;
        }
        const std::string reason = body.value("reason", std::string());
        ++result_.answered;
        ++progress_.answered;
        result_.latency.add(latency);
        result_.last_answer = Clock::now();
        if (accepted) {
            ++result_.outcomes["placed"];
        } else if (status == "success") {
            ++result_.succeeded;
            ++result_.outcomes["success"];
        } else {
            ++result_.outcomes["failed: " + reason];
        }
        if (options_.keep_answers) result_.answers.push_back({order_id_of(body), status, reason});
    }

    struct Scheduled {
        std::size_t connection;
        Clock::time_point due;
    };

    const LoadOptions& options_;
    Progress& progress_;
    const Clock::time_point start_;
    const Clock::time_point end_;
    const Clock::time_point hard_end_;
    const bool open_loop_;
    const std::chrono::nanoseconds interval_;
    std::string request_;
    sockaddr_storage address_{};
    socklen_t address_len_ = 0;
    int family_ = AF_INET;
    int epoll_ = -1;
    std::vector<Connection> connections_;
    std::deque<Scheduled> scheduled_;
    std::uint64_t next_index_ = 0;  // open loop: the next order's slot
    std::size_t retired_ = 0;       // connections with no more orders to send
    Result result_;
};

}  // namespace

LoadResult run_http_load(const LoadOptions& options) {
    Progress progress;
    LoadResult r;
    r.options = options;
    r.started = std::chrono::system_clock::now();
    const auto start = Clock::now() + std::chrono::milliseconds(20);
    const auto end = start + options.duration;
    LoadLoop loop(options, progress, start, end);
    LoadLoop::Result out;
    {
        ProgressBar bar(
            options.label,
            [&] {
                return std::chrono::duration<double>(Clock::now() - start) /
                       std::chrono::duration<double>(options.duration);
            },
            [&] {
                const double s = std::chrono::duration<double>(Clock::now() - start).count();
                return fmt::format("{} answered, {:.0f}/s, {} errors", progress.answered.load(),
                                   s > 0 ? progress.answered.load() / s : 0.0,
                                   progress.errors.load());
            });
        out = loop.run();
    }
    r.finished = std::chrono::system_clock::now();
    throw_if_stopped();
    r.sent = out.sent;
    r.answered = out.answered;
    r.succeeded = out.succeeded;
    r.outcomes = std::move(out.outcomes);
    for (auto& [k, v] : out.errors) {
        r.errors[k] += v;
        r.error_count += v;
    }
    r.answers = std::move(out.answers);
    // Throughput over the time orders were actually being answered: for a closed loop that is
    // the duration plus the last requests' tail; for an open loop that fell behind, longer.
    const auto last = std::max(out.last_answer, start);
    r.wall_s = std::chrono::duration<double>(std::max(last, end) - start).count();
    r.decision = out.latency.summarize();
    return r;
}
nlohmann::json to_json(const LoadResult& r) {
    return {{"label", r.options.label},
            {"mode", r.options.rate > 0 ? "open" : "closed"},
            {"concurrency", r.options.concurrency},
            {"rate", r.options.rate},
            {"duration_s", r.options.duration.count() / 1000.0},
            {"wall_s", r.wall_s},
            {"sent", r.sent},
            {"answered", r.answered},
            {"succeeded", r.succeeded},
            {"answered_per_s", r.answered_per_s()},
            {"outcomes", r.outcomes},
            {"errors", r.errors},
            {"error_count", r.error_count},
            {"decision_latency", to_json(r.decision)}};
}

}  // namespace op::bench
