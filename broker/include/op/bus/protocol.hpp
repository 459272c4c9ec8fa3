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
//   live (XPUB, clients SUB; subscribe to "" and filter locally, see subscriber.hpp):
//     <- [topic, seq, event_json]     an appended event, in seq order
//     <- ["_batch", first_seq, records]  the events of one group, first_seq on, in one frame
//                                        (batch_records.hpp: one encryption per subscriber)
//     <- ["_hb", head_seq]            heartbeat, so an idle subscriber sees a lost tail
//   replay (ROUTER, clients DEALER):
//     -> ["REPLAY", req_id, from_seq, max_events, topics]   topics: comma-separated, "" = all
//     <- ["BATCH", req_id, head_seq, next_from, event_json...]
//     <- ["ERR", req_id, reason]       e.g. from_seq is before the log's first seq (retention)
//     from_seq 0 answers an empty BATCH with next_from = head + 1: the way to learn the head.
#pragma once

#include <cstddef>
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
inline constexpr std::string_view kHeartbeatTopic = "_hb";
inline constexpr std::string_view kLiveBatchTopic = "_batch";
// Bytes of records in one live batch frame (a larger lone event goes alone): a frame stays
// well under a subscriber's message limit.
inline constexpr std::size_t kMaxLiveBatchBytes = 256 * 1024;

// Bytes of records in one PUBS frame a publisher sends (a larger lone event goes as PUB).
inline constexpr std::size_t kMaxPublishBatchBytes = 256 * 1024;
// Events in one PUBS frame: the broker refuses a frame with more whole, so that a frame of
// tiny garbage records cannot make it answer a quarter of a million refusals at once.
inline constexpr std::size_t kMaxPublishBatchEvents = 4096;

inline constexpr std::size_t kMaxReplayBatch = 10'000;

}  // namespace op::bus::protocol
