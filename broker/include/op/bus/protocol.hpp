// The broker's wire protocol, shared by the broker and the bus client. Every frame is text.
//
//   publish (ROUTER, clients DEALER):
//     -> ["PUB", token, event_json]
//     <- ["ACK", token, seq]          appended and fdatasynced
//     <- ["DUP", token, seq]          an event with this id is already in the log at seq
//     <- ["ERR", token, reason]       refused; nothing was appended; a re-send will not help
//     <- ["UNAVAILABLE", token, reason]  not appended: the broker cannot store events now
//                                        (disk full, I/O error); re-send later
//     -> ["PUBS", "", records]        many events in one frame (batch_records.hpp): each record
//                                     is <token> <len>\n<event_json>; each event is taken as
//                                     if it came alone, in order
//     <- ["ACKS", "", records]        their answers, in one frame once the group is durable:
//                                     <token> <len>\n<kind> <seq or reason>, kind one of
//                                     ACK, DUP, ERR, UNAVAILABLE as above. A PUBS frame whose
//                                     records are malformed, or more than kMaxPublishBatchEvents,
//                                     is refused whole: ["ERR", "", reason]
//     -> ["CKPT", token, consumer, seq]  a consumer has durably handled every event up to seq;
//                                        no answer. Retention deletes only what every consumer
//                                        that ever reported has passed. With CurveZMQ the
//                                        consumer must be the connection's own identity.
//   live (XPUB, clients SUB): a subscriber subscribes to one channel, named after the set of
//   topics it wants (channel_name: "@" and 16 hex digits, bit i for EventType i), and the
//   broker sends each channel only the events of its topics, so a service is not woken, nor
//   made to decrypt, for events it would discard.
//     <- [channel, prev_seq, records]  events of the channel's topics, in seq order, as records
//                                      (batch_records.hpp) <seq> <len>\n<event_json>. prev_seq
//                                      is the seq of the channel's previous event (the log's
//                                      durable head, for the first one after the broker opened
//                                      the channel): a subscriber that has not reached prev_seq
//                                      lost a frame and repairs from replay
//     <- [channel, "", last_seq, head_seq]  heartbeat: the channel's last event, and the log's
//                                      durable head; nothing for this channel lies between, so
//                                      an idle subscriber sees a lost tail and moves past the
//                                      events of other topics
//   replay (ROUTER, clients DEALER):
//     -> ["REPLAY", req_id, from_seq, max_events, topics]   topics: comma-separated, "" = all
//     <- ["BATCH", req_id, head_seq, next_from, event_json...]
//     <- ["ERR", req_id, reason]       e.g. from_seq is before the log's first seq (retention)
//     from_seq 0 answers an empty BATCH with next_from = head + 1: the way to learn the head.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace op::bus::protocol {

inline constexpr std::string_view kPublish = "PUB";
inline constexpr std::string_view kAck = "ACK";
inline constexpr std::string_view kPublishBatch = "PUBS";
inline constexpr std::string_view kAnswerBatch = "ACKS";
inline constexpr std::string_view kDuplicate = "DUP";
inline constexpr std::string_view kError = "ERR";
inline constexpr std::string_view kUnavailable = "UNAVAILABLE";
inline constexpr std::string_view kCheckpoint = "CKPT";
inline constexpr std::string_view kReplay = "REPLAY";
inline constexpr std::string_view kBatch = "BATCH";
// Bytes of records in one live frame (a larger lone event goes alone): a frame stays well
// under a subscriber's message limit.
inline constexpr std::size_t kMaxLiveBatchBytes = 256 * 1024;

// A live channel's name for a set of topics (bit i: events::EventType i). Every name has the
// same length, so ZeroMQ's prefix match of a subscription is an exact match.
inline std::string channel_name(std::uint64_t topic_mask) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string name(17, '@');
    for (int i = 0; i < 16; ++i) name[16 - i] = kHex[(topic_mask >> (4 * i)) & 0xf];
    return name;
}

// The topic set a channel name stands for; nullopt for anything else (an empty set included).
inline std::optional<std::uint64_t> parse_channel_name(std::string_view name) {
    if (name.size() != 17 || name[0] != '@') return std::nullopt;
    std::uint64_t mask = 0;
    const auto [ptr, ec] = std::from_chars(name.data() + 1, name.data() + name.size(), mask, 16);
    if (ec != std::errc{} || ptr != name.data() + name.size() || mask == 0) return std::nullopt;
    if (channel_name(mask) != name) return std::nullopt;  // one spelling per set
    return mask;
}

// Bytes of records in one PUBS frame a publisher sends (a larger lone event goes as PUB).
inline constexpr std::size_t kMaxPublishBatchBytes = 256 * 1024;
// Events in one PUBS frame: the broker refuses a frame with more whole, so that a frame of
// tiny garbage records cannot make it answer a quarter of a million refusals at once.
inline constexpr std::size_t kMaxPublishBatchEvents = 4096;

inline constexpr std::size_t kMaxReplayBatch = 10'000;

}  // namespace op::bus::protocol
