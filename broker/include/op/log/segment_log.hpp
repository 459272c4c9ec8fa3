// The broker's durable event log: append-only segment files under one directory.
//
// Each record is framed as  u32 payload_len | u32 crc32(seq ++ payload) | u64 seq | payload
// (little-endian; crc32 is zlib's). Segments are named after their first seq
// (00000000000000000001.seg) and roll once they reach LogOptions::segment_bytes.
// Appends are buffered in memory until sync(), which writes them and fdatasyncs once:
// that is the group commit. On open the tail is recovered: zeros after the last record are
// the preallocated end (kPreallocateBytes); a torn or corrupt last record is cut off and
// reported; a corrupt record followed by valid ones is refused (LogError),
// because truncating there would drop acknowledged events.
// Not thread-safe: one owner (the broker's loop) calls every method.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace op::log {

// Unrecoverable problems: I/O errors, mid-log corruption, an unusable directory.
class LogError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct LogOptions {
    std::filesystem::path dir;
    std::uint64_t segment_bytes = 64ull << 20;
    // fdatasync on sync(); tests of framing may turn it off to run faster.
    bool fsync = true;
};

struct Record {
    std::uint64_t seq = 0;
    std::string payload;
};

// What open() found and did, for the broker's startup log line.
struct RecoveryReport {
    std::size_t segments = 0;
    std::uint64_t records = 0;
    std::size_t sealed_segments = 0;  // full segments taken from their seal, not read
    std::uint64_t head_seq = 0;
    std::uint64_t truncated_bytes = 0;  // bytes cut off the tail of the last segment
    std::string truncation_reason;      // empty when nothing was cut
};

class SegmentLog {
public:
    static constexpr std::size_t kHeaderBytes = 16;
    static constexpr std::size_t kMaxPayloadBytes = 16u << 20;
    // The segment appended to is zero-filled this far past its records (never past
    // LogOptions::segment_bytes), so that most syncs overwrite space the file already has and
    // fdatasync need not also write the file's new size. A full segment keeps no zeros.
    static constexpr std::uint64_t kPreallocateBytes = 1u << 20;

    // Opens (creating the directory if needed) and recovers the tail. Throws LogError.
    explicit SegmentLog(LogOptions options);
    ~SegmentLog();
    SegmentLog(const SegmentLog&) = delete;
    SegmentLog& operator=(const SegmentLog&) = delete;

    // Buffers one record with seq = head() + 1 and returns that seq. Not durable until
    // sync() returns. Throws LogError if the payload exceeds kMaxPayloadBytes.
    std::uint64_t append(std::string_view payload);

    // Writes everything buffered and fdatasyncs it (one fsync for the whole batch; rolls
    // segments as needed). Throws LogError on any I/O error; after that the log must be
    // reopened, because the kernel may have dropped the unsynced pages.
    void sync();

    // After a failed sync(): cuts every file back to what the last successful sync made
    // durable, syncs that, and recovers the tail from disk as open() does; appends are taken
    // again once it returns. Records appended since that sync are gone (they were never
    // durable, so never acknowledged). Throws LogError if the disk still fails; call it again
    // later.
    void reopen();
    bool failed() const;  // a sync() failed and reopen() has not succeeded since

    std::uint64_t head() const;          // last appended seq (0 when empty)
    std::uint64_t durable_head() const;  // last seq known to be on disk
    std::uint64_t first_seq() const;     // first seq still in the log (1, or head()+1 when empty)

    // The oldest segment, if it is full (not the one appended to): its last seq, its size and
    // when it was last written. Retention asks this before drop_oldest_segment().
    struct SealedSegment {
        std::uint64_t first_seq = 0;
        std::uint64_t last_seq = 0;
        std::uint64_t bytes = 0;
        std::filesystem::file_time_type written;
    };
    std::optional<SealedSegment> oldest_sealed() const;
    // Deletes the oldest full segment (and its seal); first_seq() moves past it. Throws
    // LogError if it cannot, or if the oldest segment is the one appended to.
    void drop_oldest_segment();

    // Durable records with seq >= from, in order, stopping after max_records records or once
    // max_bytes of payload were collected (at least one record is returned if any exists).
    std::vector<Record> read(std::uint64_t from, std::size_t max_records,
                             std::size_t max_bytes = 4u << 20) const;

    // Calls visit for every durable record with seq >= from, in order, until it returns false.
    void scan(std::uint64_t from, const std::function<bool(const Record&)>& visit) const;

    const RecoveryReport& recovery() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace op::log
