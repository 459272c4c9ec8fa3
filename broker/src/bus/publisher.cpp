#include "op/bus/publisher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "curve.hpp"
#include "handshake_watch.hpp"
#include "op/bus/batch_records.hpp"
#include "op/bus/protocol.hpp"
#include "op/events/codec.hpp"

namespace op::bus {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kScanInterval = std::chrono::milliseconds(50);

struct Pending {
    std::string json;
    Publisher::Done done;  // called once, with the outcome
    Publisher::Deadline give_up_at;
    Clock::time_point last_sent{};
    bool sent = false;
    WhenUnavailable when_unavailable = WhenUnavailable::Retry;
    std::string unavailable_reason;  // the broker's last UNAVAILABLE answer, for a timeout
};

std::uint64_t parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

}  // namespace

struct Publisher::Impl {
    std::string endpoint;
    ClientCurveKeys curve;
    PublisherOptions options;

    std::mutex mu;
    std::vector<Pending> incoming;  // guarded by mu
    bool stopping = false;          // guarded by mu
    std::string checkpoint_consumer;  // guarded by mu
    std::uint64_t checkpoint_seq = 0;  // guarded by mu; 0: nothing new to report
    std::array<int, 2> wake{-1, -1};
    std::thread io;
    std::atomic<std::thread::id> io_id{};
    bool queued_on_io = false;  // touched on the I/O thread only: enqueue() skipped the pipe

    Impl(const Endpoints& broker, PublisherOptions opts)
        : endpoint(broker.publish), curve(broker.curve), options(opts) {
        if (pipe2(wake.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
            throw std::runtime_error("publisher: cannot create wake-up pipe");
        }
        // The socket is created inside the thread that uses it (a ZeroMQ socket is not
        // thread-safe); connect errors surface in the log, not here.
        io = std::thread([this] {
            io_id = std::this_thread::get_id();
            pthread_setname_np(pthread_self(), "bus-publisher");
            run();
        });
    }

    ~Impl() {
        close(wake[0]);
        close(wake[1]);
    }

    // Hands events to the I/O thread. The I/O thread drains the pipe before it takes the whole
    // queue, so one wake-up per non-empty queue is enough: a batch of publishes costs one
    // write(2), not one each, and events queued together leave in one frame. A publish from a
    // `done` callback runs on the I/O thread itself, which looks at the queue before it polls
    // again: no wake-up needed (a window refilled from its acks costs no pipe write and read).
    void enqueue(std::vector<Pending>& queued, bool wake) {
        bool first = false;
        {
            std::lock_guard lock(mu);
            if (!stopping) {
                first = incoming.empty();
                for (auto& p : queued) incoming.push_back(std::move(p));
                queued.clear();
            }
        }
        // Stopped: resolved here, outside the lock.
        for (auto& p : queued) p.done({PublishStatus::Stopped, 0, "publisher stopped"});
        if (!first || !wake) return;
        if (std::this_thread::get_id() == io_id.load()) {
            queued_on_io = true;
            return;
        }
        notify();
    }

    void notify() {
        const char byte = 1;
        // A full pipe already guarantees a wake-up, so a failed write is fine.
        [[maybe_unused]] auto n = write(wake[1], &byte, 1);
    }

    void run() {
        std::optional<zmq::context_t> own_ctx;
        if (options.context == nullptr) own_ctx.emplace(1);
        zmq::socket_t sock(options.context != nullptr ? *options.context : *own_ctx,
                           zmq::socket_type::dealer);
        sock.set(zmq::sockopt::linger, 0);
        sock.set(zmq::sockopt::sndhwm, 0);  // unbounded: the pending map is the real bound
        sock.set(zmq::sockopt::rcvhwm, 0);
        apply_client_curve(sock, curve);
        HandshakeWatch handshakes(sock, "publish endpoint " + endpoint);
        sock.connect(endpoint);

        std::map<std::uint64_t, Pending> in_flight;  // token -> pending, oldest first
        std::uint64_t next_token = 1;
        auto next_scan = Clock::now() + kScanInterval;

        // Sends these pending events: a lone one as PUB, more as PUBS frames of up to
        // kMaxPublishBatchBytes (one encryption and one broker wake-up per frame, not per
        // event).
        std::vector<std::pair<std::uint64_t, Pending*>> to_send;
        std::string records;
        auto send_one = [&](std::uint64_t token, Pending& p) {
            const std::string token_text = std::to_string(token);
            std::array<zmq::const_buffer, 3> frames = {
                zmq::buffer(protocol::kPublish), zmq::buffer(token_text), zmq::buffer(p.json)};
            p.sent = zmq::send_multipart(sock, frames, zmq::send_flags::dontwait).has_value();
            p.last_sent = Clock::now();
        };
        auto send_all = [&]() {
            std::size_t i = 0;
            while (i < to_send.size()) {
                if (i + 1 == to_send.size() ||
                    to_send[i].second->json.size() >= protocol::kMaxPublishBatchBytes) {
                    send_one(to_send[i].first, *to_send[i].second);
                    ++i;
                    continue;
                }
                records.clear();
                const std::size_t first = i;
                while (i < to_send.size() && i - first < protocol::kMaxPublishBatchEvents &&
                       (records.empty() || records.size() + to_send[i].second->json.size() <=
                                               protocol::kMaxPublishBatchBytes)) {
                    append_record(records, std::to_string(to_send[i].first),
                                  to_send[i].second->json);
                    ++i;
                }
                std::array<zmq::const_buffer, 3> frames = {zmq::buffer(protocol::kPublishBatch),
                                                           zmq::const_buffer(nullptr, 0),
                                                           zmq::buffer(records)};
                const bool sent =
                    zmq::send_multipart(sock, frames, zmq::send_flags::dontwait).has_value();
                const auto now = Clock::now();
                for (std::size_t k = first; k < i; ++k) {
                    to_send[k].second->sent = sent;
                    to_send[k].second->last_sent = now;
                }
            }
            to_send.clear();
        };

        // When the broker last answered anything, and the latest send time among the events it
        // answered. The broker answers one connection's publishes in the order they came, so
        // an event still unanswered while one sent after it was answered was lost (a broker
        // restart, a dropped connection); one merely queued behind a slow group is not, and
        // re-sending it would only add load when the broker is already behind.
        Clock::time_point last_answer_at = Clock::now();
        Clock::time_point newest_answered_sent{};

        // One answer from the broker, to a PUB or within an ACKS.
        auto resolve = [&](std::string_view token, std::string_view kind,
                           std::string_view value) {
            last_answer_at = Clock::now();
            auto it = in_flight.find(parse_u64(token));
            if (it == in_flight.end()) return;  // answer to a re-send already resolved
            newest_answered_sent = std::max(newest_answered_sent, it->second.last_sent);
            if (kind == protocol::kUnavailable &&
                it->second.when_unavailable == WhenUnavailable::Retry) {
                // Not stored: re-sent on the retry timer, measured from this answer.
                it->second.unavailable_reason = std::string(value);
                it->second.last_sent = Clock::now();
                return;
            }
            PublishResult result;
            if (kind == protocol::kAck) {
                result = {PublishStatus::Appended, parse_u64(value), {}};
            } else if (kind == protocol::kDuplicate) {
                result = {PublishStatus::Duplicate, parse_u64(value), {}};
            } else if (kind == protocol::kUnavailable) {
                result = {PublishStatus::Unavailable, 0, std::string(value)};
            } else {
                result = {PublishStatus::Rejected, 0, std::string(value)};
            }
            it->second.done(std::move(result));
            in_flight.erase(it);
        };

        // Every answer the broker has sent, until a receive finds nothing. That last receive
        // also takes in every command ZeroMQ had queued for the socket, which is what makes the
        // wait below on its ZMQ_FD sound: it turns readable only when a new command (the next
        // answer's arrival) is queued. So this runs after every send, before the next wait.
        std::vector<zmq::message_t> reply;
        auto take_replies = [&] {
            while (true) {
                reply.clear();
                auto got = zmq::recv_multipart(sock, std::back_inserter(reply),
                                               zmq::recv_flags::dontwait);
                if (!got) break;
                if (reply.size() != 3) {
                    spdlog::warn("publisher: ignoring a reply of {} frames from the broker",
                                 reply.size());
                    continue;
                }
                if (reply[0].to_string_view() == protocol::kAnswerBatch) {
                    const bool whole = parse_records(
                        reply[2].to_string_view(), [&](std::string_view token,
                                                       std::string_view answer) {
                            const auto space = answer.find(' ');
                            if (space == std::string_view::npos) return;
                            resolve(token, answer.substr(0, space), answer.substr(space + 1));
                        });
                    // What was not answered is re-sent on the retry timer.
                    if (!whole) spdlog::warn("publisher: a malformed ACKS frame from the broker");
                    continue;
                }
                resolve(reply[1].to_string_view(), reply[0].to_string_view(),
                        reply[2].to_string_view());
            }
        };

        // Waited on with poll(2), not zmq_poll: that asks the socket for its events before and
        // after the wait (a poll(2) and a getpid(2) each), 6 syscalls a wait against 1.
        const int sock_fd = sock.get(zmq::sockopt::fd);
        for (;;) {
            std::array<pollfd, 2> fds = {pollfd{sock_fd, POLLIN, 0}, pollfd{wake[0], POLLIN, 0}};
            // Publishes queued by this thread's own callbacks go out without waiting.
            if (!queued_on_io) {
                if (::poll(fds.data(), fds.size(), static_cast<int>(kScanInterval.count())) < 0) {
                    continue;  // EINTR
                }
            }
            queued_on_io = false;
            handshakes.check();
            if (fds[1].revents & POLLIN) {
                std::array<char, 256> drain{};
                while (read(wake[0], drain.data(), drain.size()) > 0) {
                }
            }

            std::vector<Pending> fresh;
            bool stop_now = false;
            std::string consumer;
            std::uint64_t checkpoint = 0;
            {
                std::lock_guard lock(mu);
                fresh.swap(incoming);
                stop_now = stopping;
                consumer = checkpoint_consumer;
                std::swap(checkpoint, checkpoint_seq);
            }
            if (checkpoint != 0) {
                const std::string seq = std::to_string(checkpoint);
                std::array<zmq::const_buffer, 4> frames = {
                    zmq::buffer(protocol::kCheckpoint), zmq::buffer(std::string_view("0")),
                    zmq::buffer(consumer), zmq::buffer(seq)};
                (void)zmq::send_multipart(sock, frames, zmq::send_flags::dontwait);
            }
            for (auto& p : fresh) {
                auto [it, _] = in_flight.emplace(next_token++, std::move(p));
                to_send.emplace_back(it->first, &it->second);
            }
            send_all();
            if (stop_now) {
                for (auto& [token, p] : in_flight) {
                    p.done({PublishStatus::Stopped, 0, "publisher stopped"});
                }
                return;
            }

            take_replies();

            const auto now = Clock::now();
            if (now >= next_scan) {
                next_scan = now + kScanInterval;
                for (auto it = in_flight.begin(); it != in_flight.end();) {
                    Pending& p = it->second;
                    if (now >= p.give_up_at) {
                        p.done(
                            {PublishStatus::TimedOut, 0,
                             p.unavailable_reason.empty()
                                 ? std::string("no acknowledgement from the broker")
                                 : p.unavailable_reason});
                        it = in_flight.erase(it);
                        continue;
                    }
                    // Re-sent once it is overdue and either the broker has gone quiet (down,
                    // restarting, stopped) or it answered something sent after this one.
                    const bool overdue = now - p.last_sent >= options.retry_interval;
                    const bool broker_quiet = now - last_answer_at >= options.retry_interval;
                    const bool overtaken = newest_answered_sent > p.last_sent;
                    if (!p.sent || (overdue && (broker_quiet || overtaken))) {
                        to_send.emplace_back(it->first, &p);
                    }
                    ++it;
                }
                if (!to_send.empty()) {
                    send_all();
                    take_replies();
                }
            }
        }
    }
};

Publisher::Publisher(const Endpoints& broker, PublisherOptions options)
    : impl_(std::make_unique<Impl>(broker, options)) {}

Publisher::~Publisher() { stop(); }

void Publisher::report_checkpoint(const std::string& consumer, std::uint64_t seq) {
    if (seq == 0) return;
    {
        std::lock_guard lock(impl_->mu);
        impl_->checkpoint_consumer = consumer;
        impl_->checkpoint_seq = seq;
    }
    impl_->notify();
}

std::future<PublishResult> Publisher::publish(const events::Event& event, Deadline give_up_at,
                                              WhenUnavailable when_unavailable) {
    return std::move(publish_many({&event, 1}, give_up_at, when_unavailable).front());
}

std::vector<std::future<PublishResult>> Publisher::publish_many(
    std::span<const events::Event> batch, Deadline give_up_at,
    WhenUnavailable when_unavailable) {
    auto promises = std::make_shared<std::vector<std::promise<PublishResult>>>(batch.size());
    std::vector<std::future<PublishResult>> futures;
    futures.reserve(batch.size());
    for (auto& promise : *promises) futures.push_back(promise.get_future());
    publish_many_then(batch, give_up_at, when_unavailable,
                      [promises](std::size_t i, PublishResult result) {
                          (*promises)[i].set_value(std::move(result));
                      });
    return futures;
}

void Publisher::publish_then(const events::Event& event, Deadline give_up_at,
                             WhenUnavailable when_unavailable, Done done) {
    std::vector<Pending> queued(1);
    queued[0].json = events::encode(event);
    queued[0].give_up_at = give_up_at;
    queued[0].when_unavailable = when_unavailable;
    queued[0].done = std::move(done);
    impl_->enqueue(queued, true);
}

void Publisher::publish_many_then(std::span<const events::Event> batch, Deadline give_up_at,
                                  WhenUnavailable when_unavailable, DoneAt done) {
    auto shared_done = std::make_shared<DoneAt>(std::move(done));
    std::vector<Pending> queued(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
        queued[i].json = events::encode(batch[i]);
        queued[i].give_up_at = give_up_at;
        queued[i].when_unavailable = when_unavailable;
        queued[i].done = [shared_done, i](PublishResult result) {
            (*shared_done)(i, std::move(result));
        };
    }
    impl_->enqueue(queued, !batch.empty());
}

std::vector<PublishResult> Publisher::publish_all(const std::vector<events::Event>& batch,
                                                  Deadline give_up_at) {
    auto futures = publish_many(batch, give_up_at);
    std::vector<PublishResult> results;
    results.reserve(batch.size());
    for (auto& f : futures) results.push_back(f.get());
    return results;
}

void Publisher::stop() {
    if (!impl_) return;
    std::vector<Pending> stopped;
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->stopping && !impl_->io.joinable()) return;
        impl_->stopping = true;
        stopped.swap(impl_->incoming);
    }
    // Outside the lock: a callback may publish again (and learn that it is stopped).
    for (auto& p : stopped) p.done({PublishStatus::Stopped, 0, "publisher stopped"});
    impl_->notify();
    if (impl_->io.joinable()) impl_->io.join();
}

}  // namespace op::bus
