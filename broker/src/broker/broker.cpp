#include "op/broker/broker.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "checkpoints.hpp"
#include "op/broker/id_index.hpp"
#include "op/bus/batch_records.hpp"
#include "op/bus/protocol.hpp"
#include "op/events/codec.hpp"
#include "op/log/segment_log.hpp"
#include "op/runtime/failpoint.hpp"
#include "op/runtime/rate_limited_log.hpp"
#include "op/security/keys.hpp"
#include "op/security/policy.hpp"
#include "zap_handler.hpp"

namespace op::broker {
namespace {

using Clock = std::chrono::steady_clock;
namespace protocol = bus::protocol;

constexpr std::size_t kMaxReplayScan = 50'000;     // records examined per replay request
constexpr std::size_t kMaxReplayBytes = 4u << 20;  // payload bytes per replay answer

std::optional<std::uint64_t> parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

// One event's answer: kind is ACK, DUP, ERR or UNAVAILABLE; value the seq or the reason.
struct Answer {
    std::string_view kind;
    std::string token;
    std::string value;
};

// What to send one client once the group it belongs to is durable: one answer to a PUB, or
// the answers to a PUBS in one ACKS frame.
struct PendingReply {
    zmq::message_t identity;
    bool batch = false;
    std::vector<Answer> answers;
};

struct Appended {
    std::uint64_t seq;
    std::string id;
    std::uint64_t topic_bit;  // 1 << EventType: which live channels carry it
    std::string json;
};

// A live channel some subscriber follows: the events of its topics, each frame saying the
// seq of the channel's event before it, so a subscriber sees a lost frame.
struct Channel {
    std::string name;
    std::uint64_t last = 0;  // the channel's last event sent (or the head when it opened)
};

// What tells that authorized_keys changed: `broker keys` replaces it by a rename (a new inode);
// an edit in place changes its mtime or size.
struct KeysFileState {
    bool exists = false;
    ino_t inode = 0;
    std::int64_t mtime_ns = 0;
    off_t size = 0;

    static KeysFileState of(const std::filesystem::path& file) {
        struct stat st {};
        if (::stat(file.c_str(), &st) != 0) return {};
        return {true, st.st_ino,
                static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                st.st_size};
    }
    bool operator==(const KeysFileState&) const = default;
};

// How often a broker whose storage failed tries to reopen its log.
constexpr auto kReopenInterval = std::chrono::milliseconds(500);

}  // namespace

struct Broker::Impl {
    BrokerConfig config;
    log::SegmentLog log;
    std::optional<IdIndex> ids;  // every event id in the log, for the duplicate check
    Checkpoints checkpoints;     // how far each consumer has got, for retention
    std::map<std::uint64_t, Channel> channels;  // live channels followed, by topic set
    BrokerStats stats;
    runtime::RateLimitedLog refusals{"refusals"};
    // Set while the log cannot take writes (a failed write or fsync and no successful reopen
    // since): publishes are answered UNAVAILABLE until a reopen works.
    std::string storage_failure;
    Clock::time_point next_reopen{};

    std::filesystem::path keys_dir;
    std::vector<security::AuthorizedKey> current_keys;
    KeysFileState keys_state;
    Clock::time_point next_keys_check{};

    zmq::context_t ctx{1};
    // Declared before the sockets so that it outlives them: no endpoint is ever open without it.
    std::optional<ZapHandler> zap;
    zmq::socket_t publish{ctx, zmq::socket_type::router};
    zmq::socket_t live{ctx, zmq::socket_type::xpub};
    zmq::socket_t replay{ctx, zmq::socket_type::router};

    explicit Impl(BrokerConfig cfg)
        : config(std::move(cfg)),
          log(log::LogOptions{config.data_dir / "broker" / "log", config.segment_bytes, true}),
          checkpoints(config.data_dir / "broker" / "checkpoints"),
          keys_dir(config.keys_dir.empty() ? config.data_dir / "keys" : config.keys_dir) {
        rebuild_index();
        for (auto* s : {&publish, &live, &replay}) {
            s->set(zmq::sockopt::linger, 0);
            s->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(config.max_message_bytes));
            s->set(zmq::sockopt::sndhwm, 0);
            s->set(zmq::sockopt::rcvhwm, 0);
        }
        // Unroutable replies (a client that went away) are dropped, not an error.
        publish.set(zmq::sockopt::router_mandatory, false);
        if (config.secure) {
            secure_endpoints();
        } else {
            spdlog::warn(
                "security is off (--insecure): anyone who can reach the endpoints may "
                "publish any event and read them all");
        }
        bind_all();
    }

    void bind_all() {
        bind(publish, config.endpoints.publish, "publish");
        bind(live, config.endpoints.live, "live");
        bind(replay, config.endpoints.replay, "replay");
    }

    // CURVE server on every endpoint, each with its own ZAP domain so the handler can tell a
    // reader from a publisher; the handler is up before anything is bound.
    void secure_endpoints() {
        const auto pair = security::read_key_pair(keys_dir, security::kBrokerIdentity);
        const auto authorized_file = security::authorized_keys_path(keys_dir);
        keys_state = KeysFileState::of(authorized_file);
        current_keys = security::read_authorized_keys(authorized_file);
        spdlog::info("CurveZMQ on: {} authorized keys in {}", current_keys.size(),
                     authorized_file.string());
        zap.emplace(ctx, current_keys);
        const std::array<std::pair<zmq::socket_t*, security::Endpoint>, 3> sockets = {
            std::pair{&publish, security::Endpoint::Publish},
            std::pair{&live, security::Endpoint::Live},
            std::pair{&replay, security::Endpoint::Replay}};
        for (auto [socket, endpoint] : sockets) {
            socket->set(zmq::sockopt::curve_server, true);
            socket->set(zmq::sockopt::curve_secretkey, pair.secret_key);
            socket->set(zmq::sockopt::zap_domain, std::string(security::zap_domain(endpoint)));
        }
    }

    // Takes a changed authorized_keys. Connections already made stay authenticated by the key
    // they showed, so when a key was removed every endpoint is unbound and bound again: each
    // client reconnects and shows its key to the handler anew (publishers re-send what was not
    // acknowledged, subscribers repair the gap from the replay endpoint), and a removed key
    // stays out.
    void check_authorized_keys() {
        const auto file = security::authorized_keys_path(keys_dir);
        const auto state = KeysFileState::of(file);
        if (state == keys_state) return;
        keys_state = state;
        std::vector<security::AuthorizedKey> keys;
        try {
            keys = security::read_authorized_keys(file);
        } catch (const security::KeyError& e) {
            spdlog::error(
                "authorized_keys changed but cannot be used, keeping the keys as they "
                "were: {}",
                e.what());
            return;
        }
        const auto before = current_keys;
        current_keys = keys;
        ++stats.keys_reloads;
        std::size_t removed = 0;
        for (const auto& k : before) {
            if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
                spdlog::warn("key of \"{}\" ({}) removed from authorized_keys: cutting it off",
                             k.identity, k.public_key);
                ++removed;
            }
        }
        zap->replace_keys(std::move(keys));
        spdlog::info("authorized_keys reloaded: {} keys", current_keys.size());
        if (removed > 0) rebind_all();
    }

    void rebind_all() {
        const std::array<std::pair<zmq::socket_t*, const char*>, 3> sockets = {
            std::pair{&publish, "publish"}, std::pair{&live, "live"}, std::pair{&replay, "replay"}};
        std::array<std::string, 3> bound;
        for (std::size_t i = 0; i < sockets.size(); ++i) {
            bound[i] = last_endpoint(*sockets[i].first);
            sockets[i].first->unbind(bound[i]);
        }
        // unbind closes the listener in ZeroMQ's I/O thread, so the port may stay taken for a
        // moment.
        const auto give_up = Clock::now() + std::chrono::seconds(5);
        for (std::size_t i = 0; i < sockets.size(); ++i) {
            for (;;) {
                try {
                    bind(*sockets[i].first, bound[i], sockets[i].second);
                    break;
                } catch (const std::runtime_error&) {
                    if (Clock::now() >= give_up) throw;
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                }
            }
        }
        spdlog::info(
            "every connection dropped and the endpoints bound again, so that each "
            "client shows its key anew");
    }

    static void bind(zmq::socket_t& s, const std::string& endpoint, const char* what) {
        try {
            s.bind(endpoint);
        } catch (const zmq::error_t& e) {
            throw std::runtime_error(fmt::format(
                "cannot bind the {} endpoint {}: {} (is another broker running? pick another "
                "port with --{})",
                what, endpoint, e.what(), what));
        }
    }

    void rebuild_index() {
        const auto& report = log.recovery();
        if (!report.truncation_reason.empty()) {
            spdlog::warn("log recovery cut {} bytes: {}", report.truncated_bytes,
                         report.truncation_reason);
        }
        // The id index keeps what it has written out; only the log's tail after it is read.
        ids.emplace(IdIndexOptions{config.data_dir / "broker" / "ids", config.id_index_recent},
                    log.first_seq(), log.head());
        const std::uint64_t from = std::max(ids->indexed_through() + 1, log.first_seq());
        std::uint64_t tail = 0;
        if (from <= log.head()) {
            // A log without runs (one older than the index, or runs lost) is indexed in
            // passes, written out as it goes, so memory stays bounded here too.
            log.scan(from, [&](const log::Record& r) {
                if (auto id = id_of(r.payload)) ids->insert(std::move(*id), r.seq);
                ++tail;
                ids->flush_if_full(r.seq);
                return true;
            });
        }
        spdlog::info(
            "log recovered: {} segments, head seq {}; id index: {} ids in {} runs, {} "
            "read from the log's tail",
            report.segments, log.head(), ids->run_entries(), ids->run_count(), tail);
    }

    static std::optional<std::string> id_of(const std::string& payload) {
        auto j = nlohmann::json::parse(payload, nullptr, false);
        if (!j.is_object()) return std::nullopt;
        auto it = j.find("id");
        if (it == j.end() || !it->is_string()) return std::nullopt;
        return it->get<std::string>();
    }

    // Whether the record at `seq` is the event with this id: the id index's hashes are only
    // ever taken as a hint.
    bool record_has_id(std::uint64_t seq, const std::string& id) const {
        bool same = false;
        log.scan(seq, [&](const log::Record& r) {
            same = r.seq == seq && id_of(r.payload) == id;
            return false;
        });
        return same;
    }

    void run(const std::atomic<bool>& stop) {
        spdlog::info("broker ready: publish {} live {} replay {}", last_endpoint(publish),
                     last_endpoint(live), last_endpoint(replay));
        auto next_heartbeat = Clock::now();
        while (!stop.load()) {
            std::array<zmq::pollitem_t, 3> items = {
                zmq::pollitem_t{publish.handle(), 0, ZMQ_POLLIN, 0},
                zmq::pollitem_t{replay.handle(), 0, ZMQ_POLLIN, 0},
                zmq::pollitem_t{live.handle(), 0, ZMQ_POLLIN, 0}};
            try {
                zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
            } catch (const zmq::error_t& e) {
                if (e.num() == EINTR) continue;
                throw;
            }
            if (!storage_failure.empty() && Clock::now() >= next_reopen) try_reopen();
            if (zap && Clock::now() >= next_keys_check) {
                check_authorized_keys();
                next_keys_check = Clock::now() + config.keys_check;
            }
            if (items[0].revents & ZMQ_POLLIN) ingest_group();
            if (items[1].revents & ZMQ_POLLIN) serve_replays();
            if (items[2].revents & ZMQ_POLLIN) drain_subscriptions();
            if (Clock::now() >= next_heartbeat) {
                refusals.tick();
                checkpoints.save_if_changed();
                apply_retention();
                send_heartbeat();
                next_heartbeat = Clock::now() + config.heartbeat;
            }
        }
        refusals.flush();
        checkpoints.save_if_changed();
        spdlog::info(
            "broker stopping at head seq {} ({} appended, {} duplicates, {} refused of "
            "which {} unauthorized, {} connections denied)",
            log.head(), stats.appended, stats.duplicates, stats.rejected, stats.unauthorized,
            zap ? zap->denied() : 0);
    }

    static std::string last_endpoint(zmq::socket_t& s) {
        return s.get(zmq::sockopt::last_endpoint);
    }

    void ingest_group() {
        std::vector<PendingReply> replies;
        std::vector<Appended> appended;
        std::vector<zmq::message_t> msg;
        while (appended.size() < config.max_group) {
            msg.clear();
            zmq::recv_result_t got;
            try {
                got = zmq::recv_multipart(publish, std::back_inserter(msg),
                                          zmq::recv_flags::dontwait);
            } catch (const zmq::error_t& e) {
                if (e.num() == EINTR) continue;
                throw;
            }
            if (!got) break;
            accept(msg, replies, appended);
        }
        if (!appended.empty()) {
            // The group commit: everything above becomes durable with one fdatasync, and no
            // ack leaves before it returns.
            try {
                log.sync();
            } catch (const log::LogError& e) {
                storage_failed(e.what(), appended, replies);
                return;
            }
            ++stats.syncs;
            failpoint::hit(failpoint::kAfterFsync);
            write_id_run();
        }
        fan_out(appended);
        send_replies(replies);
    }

    // Each channel gets the group's events of its topics, as few frames as fit
    // kMaxLiveBatchBytes (each frame costs its subscribers a decryption), each saying the seq
    // of the channel's event before its first.
    void fan_out(const std::vector<Appended>& appended) {
        if (appended.empty()) return;
        std::string records;
        for (auto& [mask, channel] : channels) {
            std::size_t i = 0;
            while (i < appended.size()) {
                records.clear();
                const std::string prev = std::to_string(channel.last);
                for (; i < appended.size(); ++i) {
                    const Appended& a = appended[i];
                    if ((a.topic_bit & mask) == 0) continue;
                    if (!records.empty() &&
                        records.size() + a.json.size() > protocol::kMaxLiveBatchBytes) {
                        break;
                    }
                    bus::append_record(records, std::to_string(a.seq), a.json);
                    channel.last = a.seq;
                }
                if (records.empty()) break;
                std::array<zmq::const_buffer, 3> frames = {
                    zmq::buffer(channel.name), zmq::buffer(prev), zmq::buffer(records)};
                zmq::send_multipart(live, frames);
            }
        }
    }

    void accept(std::vector<zmq::message_t>& msg, std::vector<PendingReply>& replies,
                std::vector<Appended>& appended) {
        auto refuse = [&](std::string token, std::string reason) {
            ++stats.rejected;
            refusals.warn("refused a publish: " + reason);
            if (msg.empty()) return;
            PendingReply reply{std::move(msg[0]), false, {}};
            reply.answers.push_back({protocol::kError, std::move(token), std::move(reason)});
            replies.push_back(std::move(reply));
        };
        if (msg.size() == 5 && msg[1].to_string_view() == protocol::kCheckpoint) {
            take_checkpoint(msg);
            return;
        }
        if (msg.size() == 4 && msg[1].to_string_view() == protocol::kPublishBatch) {
            // Framing is checked whole first, so a damaged frame appends nothing.
            const auto records = msg[3].to_string_view();
            const auto count = bus::count_records(records);
            if (!count) {
                refuse(msg[2].to_string(),
                       "a PUBS frame's records are malformed (expected <token> <length>\\n"
                       "<event json>, repeated); nothing of it was appended");
                return;
            }
            if (*count > protocol::kMaxPublishBatchEvents) {
                refuse(msg[2].to_string(),
                       fmt::format("a PUBS frame holds {} events, more than the {} allowed; "
                                   "nothing of it was appended: send them in smaller frames",
                                   *count, protocol::kMaxPublishBatchEvents));
                return;
            }
            PendingReply reply{std::move(msg[0]), true, {}};
            bus::parse_records(records, [&](std::string_view token, std::string_view json) {
                reply.answers.push_back(take_event(msg[1], std::string(token), json, appended));
            });
            replies.push_back(std::move(reply));
            return;
        }
        if (msg.size() != 4 || msg[1].to_string_view() != protocol::kPublish) {
            refuse(msg.size() >= 3 ? msg[2].to_string() : std::string(),
                   fmt::format("expected frames [PUB, token, event] or [PUBS, \"\", records], "
                               "got {} frames",
                               msg.size() >= 1 ? msg.size() - 1 : 0));
            return;
        }
        PendingReply reply{std::move(msg[0]), false, {}};
        reply.answers.push_back(
            take_event(msg[1], msg[2].to_string(), msg[3].to_string_view(), appended));
        replies.push_back(std::move(reply));
    }

    // Validates, authorizes and appends one published event (not yet durable: the group's
    // sync comes after). `frame` is one of the message's frames, which carry the connection's
    // identity.
    Answer take_event(const zmq::message_t& frame, std::string token, std::string_view json,
                      std::vector<Appended>& appended) {
        auto refuse = [&](std::string reason) {
            ++stats.rejected;
            refusals.warn("refused a publish: " + reason);
            return Answer{protocol::kError, std::move(token), std::move(reason)};
        };
        auto decoded = events::decode(json);
        if (!decoded) return refuse(decoded.error);
        events::Event& event = *decoded.event;
        if (zap) {
            // The identity the ZAP handler gave this connection, never a field of the event.
            const char* identity = zmq_msg_gets(frame.handle(), "User-Id");
            const std::string who = identity != nullptr ? identity : "";
            if (!security::rights_of(who).may_publish_type(event.type())) {
                ++stats.unauthorized;
                return refuse(fmt::format("identity \"{}\" may not publish {} (event {}, order {})",
                                          who, event.type_name(), event.id, event.order_id));
            }
        }
        if (!storage_failure.empty()) {
            ++stats.unavailable;
            return {protocol::kUnavailable, std::move(token), unavailable_reason()};
        }
        if (const auto seq = ids->find(event.id, [&](std::uint64_t candidate) {
                return record_has_id(candidate, event.id);
            })) {
            ++stats.duplicates;
            return {protocol::kDuplicate, std::move(token), std::to_string(*seq)};
        }
        event.seq = log.head() + 1;
        std::string encoded = events::encode(event);
        const auto seq = log.append(encoded);
        ids->insert(event.id, seq);
        ++stats.appended;
        spdlog::debug("appended seq {} {} order {}", seq, event.type_name(), event.order_id);
        appended.push_back({seq, std::move(event.id),
                            std::uint64_t{1} << static_cast<unsigned>(event.type()),
                            std::move(encoded)});
        return {protocol::kAck, std::move(token), std::to_string(seq)};
    }

    // A run that cannot be written leaves its ids in memory, where they still answer; the
    // next group tries again.
    void write_id_run() {
        try {
            ids->flush_if_full(log.durable_head());
        } catch (const std::exception& e) {
            spdlog::error("{}; keeping those ids in memory and trying again", e.what());
        }
    }

    // ["CKPT", token, consumer, seq]: no answer, so a refusal is only logged and counted.
    void take_checkpoint(const std::vector<zmq::message_t>& msg) {
        const std::string consumer = msg[3].to_string();
        const auto seq = parse_u64(msg[4].to_string_view());
        std::string why;
        if (!security::is_identity_name(consumer)) {
            why = "the consumer is not an identity name";
        } else if (!seq || *seq > log.head()) {
            why = fmt::format("seq must be an integer up to the head {}", log.head());
        } else if (zap) {
            const char* identity = zmq_msg_gets(msg[1].handle(), "User-Id");
            if (identity == nullptr || consumer != identity) {
                why = fmt::format("identity \"{}\" may report only its own checkpoint",
                                  identity != nullptr ? identity : "");
            }
        }
        if (!why.empty()) {
            ++stats.rejected;
            refusals.warn("refused a checkpoint of " + consumer + ": " + why);
            return;
        }
        checkpoints.update(consumer, *seq);
    }

    // Deletes the oldest full segments while every consumer has passed them and they are old
    // enough. Nothing is deleted before any consumer has reported: retention must not outrun
    // a reader the broker has never heard of.
    void apply_retention() {
        if (config.retention_age.count() <= 0) return;
        const auto floor = checkpoints.lowest();
        if (!floor) return;
        while (const auto oldest = log.oldest_sealed()) {
            if (oldest->last_seq > *floor) break;
            if (std::filesystem::file_time_type::clock::now() - oldest->written <
                config.retention_age) {
                break;
            }
            try {
                log.drop_oldest_segment();
                ids->drop_runs_before(log.first_seq());
            } catch (const std::exception& e) {
                spdlog::error("retention: {}; trying again later", e.what());
                return;
            }
            ++stats.segments_deleted;
            spdlog::info(
                "retention: deleted seqs {}..{} ({} bytes): older than {} s and passed "
                "by every consumer ({})",
                oldest->first_seq, oldest->last_seq, oldest->bytes, config.retention_age.count(),
                checkpoints.describe());
        }
    }

    void send_replies(std::vector<PendingReply>& replies) {
        std::string records;
        for (auto& r : replies) {
            if (r.batch) {
                records.clear();
                std::string body;
                for (const auto& a : r.answers) {
                    body.assign(a.kind);
                    body.push_back(' ');
                    body.append(a.value);
                    bus::append_record(records, a.token, body);
                }
                std::array<zmq::message_t, 4> frames = {std::move(r.identity),
                                                        zmq::message_t(protocol::kAnswerBatch),
                                                        zmq::message_t(), zmq::message_t(records)};
                zmq::send_multipart(publish, frames, zmq::send_flags::dontwait);
                continue;
            }
            auto& a = r.answers.front();
            std::array<zmq::message_t, 4> frames = {std::move(r.identity), zmq::message_t(a.kind),
                                                    zmq::message_t(a.token),
                                                    zmq::message_t(a.value)};
            zmq::send_multipart(publish, frames, zmq::send_flags::dontwait);
        }
    }

    std::string unavailable_reason() const {
        return "the broker cannot store events right now (" + storage_failure +
               "); nothing was appended, send it again later";
    }

    // A write or fsync of this group failed: none of it may be acknowledged, fanned out or
    // kept in the duplicate index, and the log is cut back to its last good sync before
    // anything is taken again (after a failed fsync the kernel may have dropped the pages, so
    // the written bytes are never trusted, nor the fsync retried as if they were safe).
    void storage_failed(const std::string& what, const std::vector<Appended>& appended,
                        std::vector<PendingReply>& replies) {
        ++stats.storage_failures;
        storage_failure = what;
        spdlog::error(
            "storage failure, {} events of this group refused and not acknowledged: "
            "{}",
            appended.size(), what);
        for (const auto& a : appended) ids->erase_recent(a.id);
        const std::uint64_t durable = log.durable_head();
        for (auto& r : replies) {
            for (auto& a : r.answers) {
                const bool lost_ack = a.kind == protocol::kAck;
                const bool lost_dup =
                    a.kind == protocol::kDuplicate && parse_u64(a.value).value_or(0) > durable;
                if (lost_ack || lost_dup) {
                    a.kind = protocol::kUnavailable;
                    a.value = unavailable_reason();
                }
            }
        }
        send_replies(replies);
        try_reopen();
    }

    void try_reopen() {
        try {
            log.reopen();
        } catch (const log::LogError& e) {
            storage_failure = e.what();
            next_reopen = Clock::now() + kReopenInterval;
            spdlog::error("log reopen failed, refusing publishes and retrying in {} ms: {}",
                          kReopenInterval.count(), e.what());
            return;
        }
        spdlog::warn(
            "log reopened after a storage failure at head seq {}; taking publishes "
            "again",
            log.head());
        storage_failure.clear();
    }

    void serve_replays() {
        std::vector<zmq::message_t> msg;
        for (int served = 0; served < 64; ++served) {
            msg.clear();
            if (!zmq::recv_multipart(replay, std::back_inserter(msg), zmq::recv_flags::dontwait)) {
                return;
            }
            ++stats.replay_requests;
            serve_replay(msg);
        }
    }

    void serve_replay(std::vector<zmq::message_t>& msg) {
        if (msg.empty()) return;
        std::vector<zmq::message_t> reply;
        reply.push_back(std::move(msg[0]));
        auto refuse = [&](std::string req, std::string reason) {
            ++stats.rejected;
            refusals.warn("refused a replay request: " + reason);
            reply.emplace_back(std::string(protocol::kError));
            reply.emplace_back(req);
            reply.emplace_back(reason);
            zmq::send_multipart(replay, reply, zmq::send_flags::dontwait);
        };
        if (msg.size() != 6 || msg[1].to_string_view() != protocol::kReplay) {
            refuse(msg.size() >= 3 ? msg[2].to_string() : std::string(),
                   "expected frames [REPLAY, req_id, from_seq, max_events, topics]");
            return;
        }
        const auto from = parse_u64(msg[3].to_string_view());
        const auto max = parse_u64(msg[4].to_string_view());
        if (!from || !max || *max == 0 || *max > protocol::kMaxReplayBatch) {
            refuse(msg[2].to_string(),
                   fmt::format("from_seq must be an integer and max_events 1..{}",
                               protocol::kMaxReplayBatch));
            return;
        }
        std::vector<bool> wanted(events::kEventTypeCount, true);
        const auto topics = msg[5].to_string_view();
        if (!topics.empty()) {
            wanted.assign(events::kEventTypeCount, false);
            std::size_t start = 0;
            while (start <= topics.size()) {
                auto end = topics.find(',', start);
                if (end == std::string_view::npos) end = topics.size();
                auto type = events::parse_type_name(topics.substr(start, end - start));
                if (!type) {
                    refuse(msg[2].to_string(),
                           fmt::format("unknown topic \"{}\"", topics.substr(start, end - start)));
                    return;
                }
                wanted[static_cast<std::size_t>(*type)] = true;
                start = end + 1;
            }
        }
        const bool filter = !topics.empty();
        if (*from > 0 && *from < log.first_seq() && log.first_seq() <= log.head()) {
            refuse(msg[2].to_string(),
                   fmt::format("events before seq {} were deleted by retention (the broker's "
                               "--retention-age); ask from seq {} or later",
                               log.first_seq(), log.first_seq()));
            return;
        }

        reply.emplace_back(std::string(protocol::kBatch));
        reply.push_back(std::move(msg[2]));
        reply.emplace_back(std::to_string(log.durable_head()));
        const std::size_t next_from_index = reply.size();
        reply.emplace_back();
        // From 0: only the head (nothing is read).
        std::uint64_t next_from = *from == 0 ? log.durable_head() + 1 : *from;
        std::size_t matched = 0;
        std::size_t scanned = 0;
        std::size_t bytes = 0;
        if (*from > 0 && next_from <= log.durable_head()) {
            log.scan(next_from, [&](const log::Record& r) {
                next_from = r.seq + 1;
                ++scanned;
                if (!filter || wanted[type_index(r.payload)]) {
                    bytes += r.payload.size();
                    reply.emplace_back(r.payload);
                    ++matched;
                }
                return matched < *max && scanned < kMaxReplayScan && bytes < kMaxReplayBytes;
            });
        }
        reply[next_from_index] = zmq::message_t(std::to_string(next_from));
        zmq::send_multipart(replay, reply, zmq::send_flags::dontwait);
    }

    // The records are the broker's own encoding of validated events, so the type is present.
    static std::size_t type_index(const std::string& payload) {
        auto j = nlohmann::json::parse(payload, nullptr, false);
        if (!j.is_object()) return 0;
        auto it = j.find("type");
        if (it == j.end() || !it->is_string()) return 0;
        auto type = events::parse_type_name(it->get_ref<const std::string&>());
        return type ? static_cast<std::size_t>(*type) : 0;
    }

    // XPUB hands up the first subscription to a channel and the last unsubscription from it.
    // A channel opens at the durable head: its subscribers repair anything before from replay.
    // Anything that is not a channel name is ignored (such a subscriber gets nothing).
    void drain_subscriptions() {
        zmq::message_t m;
        while (live.recv(m, zmq::recv_flags::dontwait)) {
            const auto bytes = m.to_string_view();
            if (bytes.empty()) continue;
            const auto mask = protocol::parse_channel_name(bytes.substr(1));
            if (!mask || (*mask >> events::kEventTypeCount) != 0) continue;
            if (bytes[0] == 1) {
                channels.try_emplace(*mask, Channel{std::string(bytes.substr(1)),
                                                    log.durable_head()});
            } else if (bytes[0] == 0) {
                channels.erase(*mask);
            }
        }
    }

    void send_heartbeat() {
        const std::string head = std::to_string(log.durable_head());
        for (const auto& [mask, channel] : channels) {
            const std::string last = std::to_string(channel.last);
            std::array<zmq::const_buffer, 4> frames = {zmq::buffer(channel.name),
                                                       zmq::const_buffer(nullptr, 0),
                                                       zmq::buffer(last), zmq::buffer(head)};
            zmq::send_multipart(live, frames, zmq::send_flags::dontwait);
        }
    }
};

Broker::Broker(BrokerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Broker::~Broker() = default;

void Broker::run(const std::atomic<bool>& stop) { impl_->run(stop); }
std::uint64_t Broker::head() const { return impl_->log.head(); }
const BrokerStats& Broker::stats() const { return impl_->stats; }

bus::Endpoints Broker::bound_endpoints() const {
    return {Impl::last_endpoint(impl_->publish),
            Impl::last_endpoint(impl_->live),
            Impl::last_endpoint(impl_->replay),
            {}};
}

}  // namespace op::broker
