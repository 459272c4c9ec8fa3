#include "op/bus/subscriber.hpp"

#include <poll.h>

#include <array>
#include <charconv>
#include <deque>
#include <optional>

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

// Live frames held while a replay is under way; beyond this the replay covers them anyway.
constexpr std::size_t kMaxBufferedLive = 100'000;

std::uint64_t parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size()) return 0;
    return v;
}

struct LiveFrame {
    std::uint64_t seq;
    std::uint64_t prev;  // the seq of the channel's event before this one
    std::string json;
};

}  // namespace

struct Subscriber::Impl {
    SubscriberOptions options;
    std::string topics_csv;
    std::string channel;  // protocol::channel_name of the wanted topics

    zmq::context_t ctx{1};
    zmq::socket_t live{ctx, zmq::socket_type::sub};
    zmq::socket_t replay{ctx, zmq::socket_type::dealer};
    std::optional<HandshakeWatch> live_handshakes;
    std::optional<HandshakeWatch> replay_handshakes;
    int live_fd = -1;  // ZMQ_FD: readable once a command for `live` is queued (wait_live_only)

    std::uint64_t next_seq;
    std::uint64_t head = 0;
    bool caught_up = false;
    std::uint64_t undecodable = 0;
    std::string refusal;

    // Replay state: while replaying, live frames are buffered, not delivered.
    bool replaying = true;
    std::uint64_t request_id = 0;
    bool request_outstanding = false;
    Clock::time_point request_sent{};
    std::deque<LiveFrame> buffered;

    explicit Impl(SubscriberOptions opts)
        : options(std::move(opts)), next_seq(std::max<std::uint64_t>(1, options.from_seq)) {
        static_assert(events::kEventTypeCount < 64, "a channel's topic set is a 64-bit mask");
        // No topics: every topic.
        std::uint64_t mask = options.topics.empty()
                                 ? (std::uint64_t{1} << events::kEventTypeCount) - 1
                                 : 0;
        for (auto t : options.topics) {
            mask |= std::uint64_t{1} << static_cast<unsigned>(t);
            if (!topics_csv.empty()) topics_csv += ',';
            topics_csv += events::type_name(t);
        }
        channel = protocol::channel_name(mask);
        for (auto* s : {&live, &replay}) s->set(zmq::sockopt::linger, 0);
        live.set(zmq::sockopt::rcvhwm, 0);
        replay.set(zmq::sockopt::rcvhwm, 0);
        // Only this topic set's channel: its frames chain by prev_seq, which is how a gap shows.
        live.set(zmq::sockopt::subscribe, channel);
        apply_client_curve(live, options.endpoints.curve);
        apply_client_curve(replay, options.endpoints.curve);
        live_handshakes.emplace(live, "live endpoint " + options.endpoints.live);
        replay_handshakes.emplace(replay, "replay endpoint " + options.endpoints.replay);
        live.connect(options.endpoints.live);
        replay.connect(options.endpoints.replay);
        live_fd = live.get(zmq::sockopt::fd);
    }

    void deliver(std::uint64_t seq, std::string json, std::vector<Delivery>& out) {
        auto decoded = events::decode(json);
        if (!decoded) {
            ++undecodable;
            spdlog::error("subscriber: skipping event seq {} that does not decode: {}", seq,
                          decoded.error);
            return;
        }
        decoded.event->seq = seq;
        out.push_back(Delivery{std::move(*decoded.event), std::move(json)});
    }

    void start_replay() {
        if (!replaying) spdlog::debug("subscriber: repairing from seq {}", next_seq);
        replaying = true;
        send_request();
    }

    void send_request() {
        const std::string id = std::to_string(++request_id);
        // From seq 0 the broker only says where its head is: how to start there.
        const bool probe_head = options.from_head && !caught_up;
        const std::string from = probe_head ? "0" : std::to_string(next_seq);
        const std::string max = std::to_string(probe_head ? 1 : options.replay_batch);
        std::array<zmq::const_buffer, 5> frames = {
            zmq::buffer(protocol::kReplay), zmq::buffer(id), zmq::buffer(from),
            zmq::buffer(max), zmq::buffer(topics_csv)};
        request_outstanding =
            zmq::send_multipart(replay, frames, zmq::send_flags::dontwait).has_value();
        request_sent = Clock::now();
    }

    void on_replay_reply(std::vector<zmq::message_t>& reply, std::vector<Delivery>& out) {
        if (reply.size() < 2 || parse_u64(reply[1].to_string_view()) != request_id) return;
        request_outstanding = false;
        if (reply[0].to_string_view() != protocol::kBatch || reply.size() < 4) {
            const std::string reason =
                reply.size() >= 3 ? reply[2].to_string() : std::string("(no reason)");
            if (reason != refusal) {
                spdlog::error("subscriber: replay from seq {} refused: {}", next_seq, reason);
            }
            refusal = reason;
            return;  // re-asked after replay_timeout
        }
        refusal.clear();
        head = std::max(head, parse_u64(reply[2].to_string_view()));
        if (options.from_head && !caught_up) next_seq = std::max(next_seq, head + 1);
        const std::uint64_t next_from = parse_u64(reply[3].to_string_view());
        for (std::size_t i = 4; i < reply.size(); ++i) {
            std::string json = reply[i].to_string();
            auto decoded = events::decode(json);
            if (!decoded || decoded.event->seq < next_seq) {
                if (!decoded) ++undecodable;
                continue;
            }
            const std::uint64_t seq = decoded.event->seq;
            out.push_back(Delivery{std::move(*decoded.event), std::move(json)});
            next_seq = seq + 1;
        }
        next_seq = std::max(next_seq, next_from);
        if (next_seq > head) {
            replaying = false;
            if (!caught_up) {
                caught_up = true;
                spdlog::debug("subscriber: caught up at seq {}", head);
            }
            drain_buffered(out);
        } else {
            send_request();
        }
    }

    void drain_buffered(std::vector<Delivery>& out) {
        while (!buffered.empty() && !replaying) {
            if (buffered.front().seq >= next_seq && buffered.front().prev >= next_seq) {
                start_replay();  // frames were dropped while the buffer was full
                break;
            }
            LiveFrame f = std::move(buffered.front());
            buffered.pop_front();
            on_live_event(std::move(f), out);
        }
    }

    void on_live_event(LiveFrame f, std::vector<Delivery>& out) {
        if (f.seq < next_seq) return;  // already delivered (from replay)
        head = std::max(head, f.seq);
        if (replaying) {
            if (buffered.size() < kMaxBufferedLive) buffered.push_back(std::move(f));
            return;
        }
        if (f.prev >= next_seq) {
            // The channel's event at prev never arrived (nor anything of ours before it).
            buffered.push_back(std::move(f));
            start_replay();
            return;
        }
        deliver(f.seq, std::move(f.json), out);
        next_seq = f.seq + 1;
    }

    void on_live_message(std::vector<zmq::message_t>& msg, std::vector<Delivery>& out) {
        if (msg.empty() || msg[0].to_string_view() != channel) return;
        if (msg.size() == 4 && msg[1].size() == 0) {
            const auto last = parse_u64(msg[2].to_string_view());
            const auto announced = parse_u64(msg[3].to_string_view());
            head = std::max(head, announced);
            if (replaying) return;
            // Heartbeats follow the channel's frames on the same socket: a last event we have
            // not reached was lost; otherwise nothing up to the head is ours.
            if (last >= next_seq) {
                start_replay();
            } else if (buffered.empty()) {
                next_seq = std::max(next_seq, announced + 1);
            }
            return;
        }
        if (msg.size() != 3) return;
        std::uint64_t prev = parse_u64(msg[1].to_string_view());
        const bool whole = parse_records(
            msg[2].to_string_view(), [&](std::string_view seq_text, std::string_view json) {
                const auto seq = parse_u64(seq_text);
                if (seq == 0 || seq <= prev) return;  // malformed: the gap shows later
                on_live_event(LiveFrame{seq, prev, std::string(json)}, out);
                prev = seq;
            });
        // The events after a damaged record are missing: the next frame or heartbeat shows the
        // gap, and the replay endpoint fills it.
        if (!whole) spdlog::warn("subscriber: a malformed live frame after seq {}", prev);
    }

    // One round of poll() when only the live socket (and the caller's wake fd) has anything to
    // say, which is nearly always. zmq_poll asks the socket for its events before and after it
    // waits (a poll(2) and a getpid(2) each), and the receive that finds nothing makes one more
    // pair: 8 syscalls each time the loop waits, 4.4 polls and 2.4 getpids an order in the
    // read model at 64 clients. Here: receive until nothing is left, which also takes in every
    // command ZeroMQ had queued for the socket, then wait on the socket's ZMQ_FD, which turns
    // readable when the next command (the next message's arrival) is queued: 3 syscalls. That
    // order, a receive that found nothing and then the wait, is what ZMQ_FD needs (see
    // zmq_getsockopt(3)); nothing else receives or sends on this socket. True: return `out`.
    bool wait_live_only(std::vector<Delivery>& out, std::size_t max_events, int wake_fd,
                        Clock::time_point deadline, std::vector<zmq::message_t>& msg) {
        while (out.size() < max_events) {
            msg.clear();
            if (!zmq::recv_multipart(live, std::back_inserter(msg), zmq::recv_flags::dontwait)) {
                break;
            }
            on_live_message(msg, out);
        }
        const auto now = Clock::now();
        if (!out.empty() || now >= deadline) return true;
        if (replaying) return false;  // a gap: the caller's loop asks the replay endpoint
        // Rounded up: a wait cut short by rounding would spin until the deadline.
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
        std::array<pollfd, 2> fds = {pollfd{live_fd, POLLIN, 0}, pollfd{wake_fd, POLLIN, 0}};
        const int n = ::poll(fds.data(), wake_fd >= 0 ? 2 : 1, static_cast<int>(left.count()));
        if (n < 0) return true;  // a signal: let the caller look at its stop flag
        live_handshakes->check();
        replay_handshakes->check();
        return wake_fd >= 0 && (fds[1].revents & POLLIN) != 0;
    }

    std::vector<Delivery> poll(std::chrono::milliseconds timeout, std::size_t max_events,
                               int wake_fd) {
        std::vector<Delivery> out;
        const auto deadline = Clock::now() + timeout;
        std::vector<zmq::message_t> msg;
        for (;;) {
            if (replaying && (!request_outstanding ||
                              Clock::now() - request_sent >= options.replay_timeout)) {
                send_request();
            }
            if (!replaying && !request_outstanding) {
                if (wait_live_only(out, max_events, wake_fd, deadline, msg)) return out;
                continue;
            }
            auto now = Clock::now();
            auto wait = out.empty() ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - now)
                                    : std::chrono::milliseconds(0);
            if (wait.count() < 0) wait = std::chrono::milliseconds(0);
            if (replaying) wait = std::min(wait, options.replay_timeout);
            // The replay socket only has something to say in answer to a request, and zmq_poll
            // costs a getpid(2) and a poll(2) for every socket it looks at. A late answer to an
            // old request waits there until the next replay, which skips it by its id.
            std::array<zmq::pollitem_t, 3> items{};
            std::size_t watched = 0;
            const auto watch = [&](void* socket, int fd) {
                items[watched] = zmq::pollitem_t{socket, fd, ZMQ_POLLIN, 0};
                return watched++;
            };
            const std::size_t live_at = watch(live.handle(), 0);
            const std::size_t replay_at =
                replaying || request_outstanding ? watch(replay.handle(), 0) : items.size();
            const std::size_t wake_at = wake_fd >= 0 ? watch(nullptr, wake_fd) : items.size();
            const auto ready = [&](std::size_t at) {
                return at < watched && (items[at].revents & ZMQ_POLLIN) != 0;
            };
            try {
                zmq::poll(items.data(), watched, wait);
            } catch (const zmq::error_t& e) {
                if (e.num() != EINTR) throw;
                return out;  // a signal: let the caller look at its stop flag
            }
            live_handshakes->check();
            replay_handshakes->check();
            if (ready(replay_at)) {
                while (out.size() < max_events) {
                    msg.clear();
                    if (!zmq::recv_multipart(replay, std::back_inserter(msg),
                                             zmq::recv_flags::dontwait)) {
                        break;
                    }
                    on_replay_reply(msg, out);
                }
            }
            if (ready(live_at)) {
                while (out.size() < max_events) {
                    msg.clear();
                    if (!zmq::recv_multipart(live, std::back_inserter(msg),
                                             zmq::recv_flags::dontwait)) {
                        break;
                    }
                    on_live_message(msg, out);
                }
            }
            if (!out.empty() || ready(wake_at) || Clock::now() >= deadline) {
                return out;
            }
        }
    }
};

Subscriber::Subscriber(SubscriberOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

Subscriber::~Subscriber() = default;

std::vector<Delivery> Subscriber::poll(std::chrono::milliseconds timeout, std::size_t max_events,
                                       int wake_fd) {
    return impl_->poll(timeout, max_events, wake_fd);
}

std::uint64_t Subscriber::next_seq() const { return impl_->next_seq; }
std::uint64_t Subscriber::head_seq() const { return impl_->head; }
bool Subscriber::caught_up() const { return impl_->caught_up; }
std::uint64_t Subscriber::undecodable() const { return impl_->undecodable; }
const std::string& Subscriber::refusal() const { return impl_->refusal; }

}  // namespace op::bus
