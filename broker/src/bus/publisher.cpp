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

// The socket and everything in flight on it: sends, answers, re-sends. Not thread-safe: the
// thread that made it uses it (the publisher's own I/O thread, or its caller's).
class Connection {
public:
    Connection(const std::string& endpoint, const ClientCurveKeys& curve,
               const PublisherOptions& options)
        : options_(options),
          own_ctx_(options.context == nullptr ? std::make_unique<zmq::context_t>(1) : nullptr),
          sock_(options.context != nullptr ? *options.context : *own_ctx_,
                zmq::socket_type::dealer) {
        sock_.set(zmq::sockopt::linger, 0);
        sock_.set(zmq::sockopt::sndhwm, 0);  // unbounded: the pending map is the real bound
        sock_.set(zmq::sockopt::rcvhwm, 0);
        apply_client_curve(sock_, curve);
        handshakes_.emplace(sock_, "publish endpoint " + endpoint);
        sock_.connect(endpoint);
        fd_ = sock_.get(zmq::sockopt::fd);
    }

    // ZeroMQ's descriptor for the socket: readable when a command (an answer's arrival) is
    // queued for it. Waited on with poll(2), not zmq_poll: that asks the socket for its events
    // before and after the wait (a poll(2) and a getpid(2) each), 6 syscalls a wait against 1.
    int fd() const { return fd_; }

    // Sends the fresh publishes (and the checkpoint, if any) at once.
    void send(std::vector<Pending>& fresh, const std::string& consumer,
              std::uint64_t checkpoint) {
        handshakes_->check();
        if (checkpoint != 0) {
            const std::string seq = std::to_string(checkpoint);
            std::array<zmq::const_buffer, 4> frames = {
                zmq::buffer(protocol::kCheckpoint), zmq::buffer(std::string_view("0")),
                zmq::buffer(consumer), zmq::buffer(seq)};
            (void)zmq::send_multipart(sock_, frames, zmq::send_flags::dontwait);
        }
        for (auto& p : fresh) {
            auto [it, _] = in_flight_.emplace(next_token_++, std::move(p));
            to_send_.emplace_back(it->first, &it->second);
        }
        fresh.clear();
        send_all();
    }

    // Every answer the broker has sent, until a receive finds nothing; then, when due, what
    // has waited too long is given up or re-sent. The last receive also takes in every command
    // ZeroMQ had queued for the socket, which is what makes a wait on fd() sound: it turns
    // readable only when a new command (the next answer's arrival) is queued. So this runs
    // after every send, before the next wait.
    void take_answers() {
        take_replies();
        const auto now = Clock::now();
        if (now < next_scan_) return;
        next_scan_ = now + kScanInterval;
        for (auto it = in_flight_.begin(); it != in_flight_.end();) {
            Pending& p = it->second;
            if (now >= p.give_up_at) {
                p.done({PublishStatus::TimedOut, 0,
                        p.unavailable_reason.empty()
                            ? std::string("no acknowledgement from the broker")
                            : p.unavailable_reason});
                it = in_flight_.erase(it);
                continue;
            }
            // Re-sent once it is overdue and either the broker has gone quiet (down,
            // restarting, stopped) or it answered something sent after this one.
            const bool overdue = now - p.last_sent >= options_.retry_interval;
            const bool broker_quiet = now - last_answer_at_ >= options_.retry_interval;
            const bool overtaken = newest_answered_sent_ > p.last_sent;
            if (!p.sent || (overdue && (broker_quiet || overtaken))) {
                to_send_.emplace_back(it->first, &p);
            }
            ++it;
        }
        if (!to_send_.empty()) {
            send_all();
            take_replies();
        }
    }

    // Resolves everything in flight with Stopped.
    void stop_all() {
        auto stopped = std::exchange(in_flight_, {});
        for (auto& [token, p] : stopped) p.done({PublishStatus::Stopped, 0, "publisher stopped"});
    }

private:
    void send_one(std::uint64_t token, Pending& p) {
        const std::string token_text = std::to_string(token);
        std::array<zmq::const_buffer, 3> frames = {
            zmq::buffer(protocol::kPublish), zmq::buffer(token_text), zmq::buffer(p.json)};
        p.sent = zmq::send_multipart(sock_, frames, zmq::send_flags::dontwait).has_value();
        p.last_sent = Clock::now();
    }

    // Sends to_send_: a lone event as PUB, more as PUBS frames of up to kMaxPublishBatchBytes
    // (one encryption and one broker wake-up per frame, not per event).
    void send_all() {
        std::size_t i = 0;
        while (i < to_send_.size()) {
            if (i + 1 == to_send_.size() ||
                to_send_[i].second->json.size() >= protocol::kMaxPublishBatchBytes) {
                send_one(to_send_[i].first, *to_send_[i].second);
                ++i;
                continue;
            }
            records_.clear();
            const std::size_t first = i;
            while (i < to_send_.size() && i - first < protocol::kMaxPublishBatchEvents &&
                   (records_.empty() || records_.size() + to_send_[i].second->json.size() <=
                                            protocol::kMaxPublishBatchBytes)) {
                append_record(records_, std::to_string(to_send_[i].first),
                              to_send_[i].second->json);
                ++i;
            }
            std::array<zmq::const_buffer, 3> frames = {zmq::buffer(protocol::kPublishBatch),
                                                       zmq::const_buffer(nullptr, 0),
                                                       zmq::buffer(records_)};
            const bool sent =
                zmq::send_multipart(sock_, frames, zmq::send_flags::dontwait).has_value();
            const auto now = Clock::now();
            for (std::size_t k = first; k < i; ++k) {
                to_send_[k].second->sent = sent;
                to_send_[k].second->last_sent = now;
            }
        }
        to_send_.clear();
    }

    // One answer from the broker, to a PUB or within an ACKS.
    void resolve(std::string_view token, std::string_view kind, std::string_view value) {
        last_answer_at_ = Clock::now();
        auto it = in_flight_.find(parse_u64(token));
        if (it == in_flight_.end()) return;  // answer to a re-send already resolved
        newest_answered_sent_ = std::max(newest_answered_sent_, it->second.last_sent);
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
        // Out of the map first: a callback may publish again, which adds to it.
        Pending done = std::move(it->second);
        in_flight_.erase(it);
        done.done(std::move(result));
    }

    void take_replies() {
        while (true) {
            reply_.clear();
            auto got = zmq::recv_multipart(sock_, std::back_inserter(reply_),
                                           zmq::recv_flags::dontwait);
            if (!got) break;
            if (reply_.size() != 3) {
                spdlog::warn("publisher: ignoring a reply of {} frames from the broker",
                             reply_.size());
                continue;
            }
            if (reply_[0].to_string_view() == protocol::kAnswerBatch) {
                const bool whole = parse_records(
                    reply_[2].to_string_view(),
                    [&](std::string_view token, std::string_view answer) {
                        const auto space = answer.find(' ');
                        if (space == std::string_view::npos) return;
                        resolve(token, answer.substr(0, space), answer.substr(space + 1));
                    });
                // What was not answered is re-sent on the retry timer.
                if (!whole) spdlog::warn("publisher: a malformed ACKS frame from the broker");
                continue;
            }
            resolve(reply_[1].to_string_view(), reply_[0].to_string_view(),
                    reply_[2].to_string_view());
        }
    }

    PublisherOptions options_;
    std::unique_ptr<zmq::context_t> own_ctx_;  // before the socket, which it must outlive
    zmq::socket_t sock_;
    std::optional<HandshakeWatch> handshakes_;
    int fd_ = -1;

    std::map<std::uint64_t, Pending> in_flight_;  // token -> pending, oldest first
    std::uint64_t next_token_ = 1;
    Clock::time_point next_scan_ = Clock::now() + kScanInterval;
    std::vector<std::pair<std::uint64_t, Pending*>> to_send_;
    std::string records_;
    std::vector<zmq::message_t> reply_;

    // When the broker last answered anything, and the latest send time among the events it
    // answered. The broker answers one connection's publishes in the order they came, so an
    // event still unanswered while one sent after it was answered was lost (a broker restart,
    // a dropped connection); one merely queued behind a slow group is not, and re-sending it
    // would only add load when the broker is already behind.
    Clock::time_point last_answer_at_ = Clock::now();
    Clock::time_point newest_answered_sent_{};
};

}  // namespace

struct Publisher::Impl {
    std::string endpoint;
    ClientCurveKeys curve;
    PublisherOptions options;

    std::mutex mu;
    std::vector<Pending> incoming;     // guarded by mu
    bool stopping = false;             // guarded by mu
    std::string checkpoint_consumer;   // guarded by mu
    std::uint64_t checkpoint_seq = 0;  // guarded by mu; 0: nothing new to report

    // With a thread of its own:
    std::array<int, 2> wake{-1, -1};
    std::thread io;
    std::atomic<std::thread::id> io_id{};
    bool queued_on_io = false;  // touched on the I/O thread only: enqueue() skipped the pipe

    // Driven by the caller: the connection lives on the caller's thread, the owner.
    std::unique_ptr<Connection> driven;
    std::thread::id owner;
    bool driving = false;      // inside drive(): a publish from a callback is taken after it
    bool drive_again = false;  // ... and this says one came

    Impl(const Endpoints& broker, PublisherOptions opts)
        : endpoint(broker.publish), curve(broker.curve), options(opts) {
        if (options.driven_by_caller) {
            owner = std::this_thread::get_id();
            driven = std::make_unique<Connection>(endpoint, curve, options);
            return;
        }
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
        if (wake[0] >= 0) close(wake[0]);
        if (wake[1] >= 0) close(wake[1]);
    }

    void check_owner(const char* what) const {
        if (!options.driven_by_caller) {
            throw std::logic_error(std::string("publisher: ") + what +
                                   " is for a publisher driven by its caller");
        }
        if (std::this_thread::get_id() != owner) {
            throw std::logic_error(std::string("publisher: ") + what +
                                   " called from a thread other than the one that made it");
        }
    }

    // Takes what publish calls queued, under the lock; true if the publisher is stopping.
    bool take_queue(std::vector<Pending>& fresh, std::string& consumer,
                    std::uint64_t& checkpoint) {
        std::lock_guard lock(mu);
        fresh.swap(incoming);
        consumer = checkpoint_consumer;
        std::swap(checkpoint, checkpoint_seq);
        return stopping;
    }

    // Hands events on. With its own thread: the I/O thread drains the pipe before it takes the
    // whole queue, so one wake-up per non-empty queue is enough: a batch of publishes costs one
    // write(2), not one each, and events queued together leave in one frame. A publish from a
    // `done` callback runs on the I/O thread itself, which looks at the queue before it polls
    // again: no wake-up needed (a window refilled from its acks costs no pipe write and read).
    // Driven by the caller: sent at once.
    void enqueue(std::vector<Pending>& queued, bool wake) {
        if (options.driven_by_caller) check_owner("a publish");
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
        if (!wake) return;
        if (options.driven_by_caller) {
            drive();
            return;
        }
        if (!first) return;
        if (std::this_thread::get_id() == io_id.load()) {
            queued_on_io = true;
            return;
        }
        notify();
    }

    void notify() {
        if (options.driven_by_caller) return;  // the owner sends it itself
        const char byte = 1;
        // A full pipe already guarantees a wake-up, so a failed write is fine.
        [[maybe_unused]] auto n = write(wake[1], &byte, 1);
    }

    void drive() {
        check_owner("drive()");
        if (!driven) return;  // stopped
        if (driving) {
            drive_again = true;  // a publish from a callback: the loop below sends it
            return;
        }
        driving = true;
        std::vector<Pending> fresh;
        std::string consumer;
        do {
            drive_again = false;
            std::uint64_t checkpoint = 0;
            take_queue(fresh, consumer, checkpoint);
            driven->send(fresh, consumer, checkpoint);
            driven->take_answers();
        } while (drive_again);
        driving = false;
        bool stopped = false;
        {
            std::lock_guard lock(mu);
            stopped = stopping;
        }
        if (stopped) stop_driven();  // stop() came from a callback, inside the loop above
    }

    // Driven by the caller; on its thread (the destructor's too).
    void stop_driven() {
        std::vector<Pending> stopped;
        {
            std::lock_guard lock(mu);
            stopping = true;
            stopped.swap(incoming);
        }
        for (auto& p : stopped) p.done({PublishStatus::Stopped, 0, "publisher stopped"});
        if (driving) return;  // drive() finishes the stop once it is out of the connection
        // Out of the Impl first: a callback that publishes again finds it stopped.
        if (auto conn = std::move(driven)) conn->stop_all();
    }

    void run() {
        Connection conn(endpoint, curve, options);
        std::vector<Pending> fresh;
        std::string consumer;
        for (;;) {
            std::array<pollfd, 2> fds = {pollfd{conn.fd(), POLLIN, 0},
                                         pollfd{wake[0], POLLIN, 0}};
            // Publishes queued by this thread's own callbacks go out without waiting.
            if (!queued_on_io) {
                if (::poll(fds.data(), fds.size(), static_cast<int>(kScanInterval.count())) < 0) {
                    continue;  // EINTR
                }
            }
            queued_on_io = false;
            if (fds[1].revents & POLLIN) {
                std::array<char, 256> drain{};
                while (read(wake[0], drain.data(), drain.size()) > 0) {
                }
            }
            std::uint64_t checkpoint = 0;
            const bool stop_now = take_queue(fresh, consumer, checkpoint);
            conn.send(fresh, consumer, checkpoint);
            if (stop_now) {
                conn.stop_all();
                return;
            }
            conn.take_answers();
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
    if (impl_->options.driven_by_caller) {
        impl_->drive();
    } else {
        impl_->notify();
    }
}

int Publisher::wait_fd() const {
    impl_->check_owner("wait_fd()");
    return impl_->driven ? impl_->driven->fd() : -1;
}

void Publisher::drive() { impl_->drive(); }

std::chrono::milliseconds Publisher::scan_interval() { return kScanInterval; }

bool Publisher::drive_until(const std::function<bool()>& done,
                            const std::function<bool()>& give_up) {
    impl_->check_owner("drive_until()");
    while (!done()) {
        if (give_up() || !impl_->driven) return false;
        pollfd fd{impl_->driven->fd(), POLLIN, 0};
        ::poll(&fd, 1, static_cast<int>(kScanInterval.count()));  // EINTR: drive anyway
        impl_->drive();
    }
    return true;
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
    if (impl_->options.driven_by_caller) {
        drive_until(
            [&] {
                for (auto& f : futures) {
                    if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
                        return false;
                    }
                }
                return true;
            },
            [] { return false; });  // each resolves by its deadline, or Stopped
    }
    std::vector<PublishResult> results;
    results.reserve(batch.size());
    for (auto& f : futures) results.push_back(f.get());
    return results;
}

void Publisher::stop() {
    if (!impl_) return;
    if (impl_->options.driven_by_caller) {
        impl_->stop_driven();
        return;
    }
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
