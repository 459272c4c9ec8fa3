#include "op/log/segment_log.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cassert>
#include <system_error>
#include <utility>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "file_io.hpp"
#include "op/runtime/failpoint.hpp"
#include "record_format.hpp"
#include "record_reader.hpp"
#include "recovery.hpp"
#include "seal.hpp"
#include "segment.hpp"

namespace op::log {

namespace fs = std::filesystem;
using detail::Fd;
using detail::ReadStatus;
using detail::RecordReader;
using detail::RecordView;
using detail::Segment;

namespace {
// Big enough to cover an index stride plus a typical read batch in one pread.
constexpr std::size_t kReadChunkBytes = 128u << 10;

// Why the active segment is zero-filled ahead of its records (SegmentLog::kPreallocateBytes):
// an fdatasync after an append that grows the file must also write the inode (its size) and
// wait for it. On this project's ext4 VM that is one more device round trip per group commit,
// ~20 % of each fdatasync and a quarter of the broker's CPU at one client. PostgreSQL
// zero-fills its WAL segments for the same reason (wal_init_zero). Written as zeros, not
// fallocate(2): writing into unwritten extents converts them, a metadata change again.
// Recovery reads an all-zero tail as the clean end of a segment.
std::string_view zeros(std::size_t n) {
    // Static storage, never written: its pages are the kernel's shared zero page, not RSS.
    static char block[SegmentLog::kPreallocateBytes];
    return std::string_view(block, std::min<std::size_t>(n, sizeof block));
}
}  // namespace

struct SegmentLog::Impl {
    LogOptions options_;
    Fd dir_fd_;     // held for the directory lock and for fsyncing new file names
    Fd active_fd_;  // the last on-disk segment, read-write
    std::vector<Segment> segments_;
    std::uint64_t head_ = 0;
    std::uint64_t durable_head_ = 0;
    RecoveryReport report_;
    std::string failure_;  // non-empty once an I/O error made the log unusable for writes
    bool no_room_to_preallocate_ = false;  // said once until zero-filling works again

    void ensure_writable() const {
        if (!failure_.empty()) {
            throw LogError("segment log " + options_.dir.string() +
                           " refuses writes after an earlier I/O error (" + failure_ +
                           "); reopen it to recover the tail");
        }
    }

    Segment& segment_for_next_record(std::uint64_t seq) {
        if (!segments_.empty()) {
            Segment& tail = segments_.back();
            // An empty segment takes the record whatever its size limit, so a record larger
            // than segment_bytes still has a home and never spans two files.
            if (tail.size() == 0 || tail.size() < options_.segment_bytes) return tail;
        }
        Segment next;
        next.base_seq = seq;
        next.path = options_.dir / detail::segment_file_name(seq);
        // Hand the batch buffer's capacity over, so rolling costs no reallocation.
        if (!segments_.empty() && segments_.back().pending.empty()) {
            next.pending.swap(segments_.back().pending);
        }
        segments_.push_back(std::move(next));
        return segments_.back();
    }

    // Pending records always sit in a suffix of segments_: only the tail takes appends.
    void write_and_sync(std::size_t first) {
        failpoint::hit(failpoint::kBeforeLogWrite);
        // Files this batch creates; the last one becomes the active segment.
        std::vector<Fd> created;
        const bool extends_active = segments_[first].on_disk;
        for (std::size_t k = first; k < segments_.size(); ++k) {
            Segment& seg = segments_[k];
            int fd = active_fd_.get();
            if (!seg.on_disk) {
                created.push_back(detail::open_file(seg.path, O_RDWR | O_CREAT | O_EXCL));
                seg.on_disk = true;
                fd = created.back().get();
                if (k > 0) failpoint::hit(failpoint::kSegmentRoll);
            }
            assert(fd >= 0);
            write_pending(fd, seg);
            preallocate(fd, seg);
        }
        // The segment this batch rolls away from keeps no zeros: a full segment's size is its
        // records' size, which its seal records. (A crash before this reaches the disk leaves
        // a zero tail on a full segment, which recovery cuts.)
        if (!created.empty() && active_fd_ && (extends_active || first > 0)) {
            release_preallocation(active_fd_.get(),
                                  segments_[extends_active ? first : first - 1]);
        }
        failpoint::hit(failpoint::kAfterLogWrite);
        if (options_.fsync) {
            std::size_t next_created = 0;
            for (std::size_t k = first; k < segments_.size(); ++k) {
                const int fd = (k == first && extends_active) ? active_fd_.get()
                                                              : created[next_created++].get();
                if (const int err = failpoint::hit(failpoint::kLogFsync)) {
                    detail::throw_errno("fdatasync", segments_[k].path, err);
                }
                detail::sync_data(fd, segments_[k].path);
            }
            // A new file's name is only durable once its directory is synced.
            if (!created.empty()) detail::sync_all(dir_fd_.get(), options_.dir);
        }
        if (!created.empty()) active_fd_ = std::move(created.back());
    }

    // Zeros from the end of seg's records to kPreallocateBytes past them (never past the
    // segment's size limit), once the records have reached the end of what is written. Only
    // a speed-up: with no room for them (a nearly full disk) the records go in without.
    void preallocate(int fd, Segment& seg) {
        const std::uint64_t end = seg.size();
        if (end < seg.allocated_bytes) return;
        const std::uint64_t target =
            std::min(end + SegmentLog::kPreallocateBytes, std::max(end, options_.segment_bytes));
        if (target > end && !detail::pwrite_all_if_room(fd, zeros(target - end), end, seg.path)) {
            detail::truncate_file(fd, end, seg.path);  // any zeros it did write
            seg.allocated_bytes = end;
            if (!no_room_to_preallocate_) {
                spdlog::warn("segment log: no room to zero-fill ahead of {}; the disk is nearly "
                             "full, and each sync there also writes the file's size",
                             seg.path.string());
            }
            no_room_to_preallocate_ = true;
            return;
        }
        no_room_to_preallocate_ = false;
        seg.allocated_bytes = target;
    }

    static void release_preallocation(int fd, Segment& seg) {
        if (seg.allocated_bytes <= seg.size()) return;
        detail::truncate_file(fd, seg.size(), seg.path);
        seg.allocated_bytes = seg.size();
    }

    static void write_pending(int fd, const Segment& seg) {
        if (const int err = failpoint::hit(failpoint::kLogWrite)) {
            detail::throw_errno("write", seg.path, err);
        }
        const std::string_view data = seg.pending;
        if (failpoint::any_armed() && data.size() > 1) {
            // Half the group on disk and half not: what a crash in the middle of a write leaves.
            const std::size_t half = data.size() / 2;
            detail::pwrite_all(fd, data.substr(0, half), seg.durable_bytes, seg.path);
            failpoint::hit(failpoint::kMidGroupWrite);
            detail::pwrite_all(fd, data.substr(half), seg.durable_bytes + half, seg.path);
            return;
        }
        detail::pwrite_all(fd, data, seg.durable_bytes, seg.path);
    }

    // Puts the files back to what the last good sync left and recovers from them, so nothing
    // written since (never acknowledged, perhaps dropped by the kernel) is ever read.
    void reopen() {
        active_fd_ = Fd();
        bool removed = false;
        for (const Segment& seg : segments_) {
            if (!seg.on_disk) continue;
            if (seg.durable_records == 0) {
                // Created by the failed batch: nothing acknowledged lives here, and an empty
                // file named past the durable head would read as a missing segment.
                std::error_code ec;
                fs::remove(seg.path, ec);
                if (ec) detail::throw_errno("unlink", seg.path, ec.value());
                removed = true;
                continue;
            }
            const Fd fd = detail::open_file(seg.path, O_RDWR);
            if (detail::file_size(fd.get(), seg.path) != seg.durable_bytes) {
                detail::truncate_file(fd.get(), seg.durable_bytes, seg.path);
                detail::sync_all(fd.get(), seg.path);
            }
        }
        if (removed) detail::sync_all(dir_fd_.get(), options_.dir);
        detail::RecoveredLog recovered = detail::recover_segments(options_.dir);
        segments_ = std::move(recovered.segments);
        active_fd_ = std::move(recovered.active_fd);
        head_ = recovered.report.head_seq;
        durable_head_ = head_;
        failure_.clear();
    }

    void commit(std::size_t first) {
        // A segment filled by the last record of an earlier batch is rolled away from by this
        // one, and sealed now rather than read again at the next start.
        if (first > 0) seal(segments_[first - 1]);
        for (std::size_t k = first; k < segments_.size(); ++k) {
            Segment& seg = segments_[k];
            seg.durable_bytes += seg.pending.size();
            seg.durable_records += seg.pending_records;
            seg.pending_records = 0;
            if (k + 1 < segments_.size()) {
                std::string().swap(seg.pending);  // a full segment never takes appends again
                seal(seg);
            } else {
                seg.pending.clear();  // keeps capacity for the next batch
            }
        }
        durable_head_ = head_;
    }

    // A full segment is durable by now; its seal spares the next start reading it. A seal
    // that cannot be written costs only that: the segment is read at the next start.
    static void seal(Segment& seg) {
        if (seg.sealed || !seg.on_disk || seg.durable_records == 0) return;
        try {
            detail::write_seal(seg);
            seg.sealed = true;
        } catch (const LogError& e) {
            spdlog::warn("segment log: cannot seal {} ({}); it is read again at the next start",
                         seg.path.string(), e.what());
        }
    }

    // Calls visit(const RecordView&) for durable records with seq >= from until it returns
    // false. visit may call back into the log (even append and sync), so segments_ is
    // re-indexed each time and the bound is fixed on entry.
    template <class Visit>
    void for_each_durable(std::uint64_t from, Visit&& visit) const {
        const std::uint64_t last = durable_head_;
        if (segments_.empty()) return;
        from = std::max(from, segments_.front().base_seq);
        if (from > last) return;

        const auto it = std::upper_bound(
            segments_.begin(), segments_.end(), from,
            [](std::uint64_t seq, const Segment& seg) { return seq < seg.base_seq; });
        std::size_t i = static_cast<std::size_t>(std::prev(it) - segments_.begin());

        for (; i < segments_.size() && from <= last; ++i) {
            const Segment& seg = segments_[i];
            if (seg.durable_records == 0) break;
            const std::uint64_t seg_last = std::min(seg.base_seq + seg.durable_records - 1, last);
            if (from > seg_last) continue;

            const detail::IndexEntry hint = seg.seek_hint(from);
            const fs::path path = seg.path;
            const std::uint64_t end = seg.durable_bytes;
            // A private descriptor: visit may roll segments and close active_fd_ under us.
            const Fd fd = detail::open_file(path, O_RDONLY);
            RecordReader reader(fd.get(), path, hint.offset, end, kReadChunkBytes);
            RecordView rec;
            for (std::uint64_t seq = hint.seq; seq <= seg_last; ++seq) {
                const ReadStatus status = reader.next(rec);
                if (status != ReadStatus::ok || rec.seq != seq) {
                    throw LogError(fmt::format(
                        "{}: record at offset {} is unreadable (expected seq {}) although it "
                        "was valid when written or recovered; the disk may be failing. Restore "
                        "the segment from backup",
                        path.string(), reader.offset(), seq));
                }
                if (seq >= from && !visit(rec)) return;
            }
            from = seg_last + 1;
        }
    }
};

SegmentLog::SegmentLog(LogOptions options) : impl_(std::make_unique<Impl>()) {
    Impl& s = *impl_;
    s.options_ = std::move(options);
    if (s.options_.dir.empty()) throw LogError("segment log: LogOptions::dir is empty");

    std::error_code ec;
    const bool created = fs::create_directories(s.options_.dir, ec);
    if (ec) throw LogError("create directory " + s.options_.dir.string() + ": " + ec.message());
    if (created && s.options_.fsync) {
        // Make the new directory's own name durable before anything is acknowledged in it.
        fs::path own = fs::absolute(s.options_.dir);
        if (!own.has_filename()) own = own.parent_path();  // "dir/" names dir, not "dir/"'s child
        const fs::path parent = own.parent_path();
        const Fd parent_fd = detail::open_file(parent, O_RDONLY | O_DIRECTORY);
        detail::sync_all(parent_fd.get(), parent);
    }
    s.dir_fd_ = detail::open_file(s.options_.dir, O_RDONLY | O_DIRECTORY);
    detail::lock_exclusive(s.dir_fd_.get(), s.options_.dir);

    detail::RecoveredLog recovered = detail::recover_segments(s.options_.dir);
    s.segments_ = std::move(recovered.segments);
    s.active_fd_ = std::move(recovered.active_fd);
    s.report_ = std::move(recovered.report);
    s.head_ = s.report_.head_seq;
    s.durable_head_ = s.head_;
}

SegmentLog::~SegmentLog() = default;

std::uint64_t SegmentLog::append(std::string_view payload) {
    Impl& s = *impl_;
    s.ensure_writable();
    if (payload.size() > kMaxPayloadBytes) {
        throw LogError(
            fmt::format("segment log: a {} byte payload exceeds the {} byte record "
                        "limit; nothing was appended",
                        payload.size(), kMaxPayloadBytes));
    }
    const std::uint64_t seq = s.head_ + 1;
    Segment& seg = s.segment_for_next_record(seq);
    seg.note_record(seq, seg.size());
    detail::append_record(seg.pending, seq, payload);
    ++seg.pending_records;
    s.head_ = seq;
    return seq;
}

void SegmentLog::sync() {
    Impl& s = *impl_;
    s.ensure_writable();
    std::size_t first = s.segments_.size();
    while (first > 0 && !s.segments_[first - 1].pending.empty()) --first;
    if (first == s.segments_.size()) return;
    try {
        s.write_and_sync(first);
    } catch (const LogError& e) {
        // After a failed write or fdatasync the kernel may have dropped dirty pages, so
        // nothing written since the last good sync can be trusted until recovery reruns.
        s.failure_ = e.what();
        throw LogError(s.failure_ + "; the log refuses writes until it is reopened");
    }
    s.commit(first);
}

void SegmentLog::reopen() {
    Impl& s = *impl_;
    try {
        s.reopen();
    } catch (const LogError& e) {
        s.failure_ = e.what();
        throw;
    }
}

bool SegmentLog::failed() const { return !impl_->failure_.empty(); }

std::uint64_t SegmentLog::head() const { return impl_->head_; }

std::uint64_t SegmentLog::durable_head() const { return impl_->durable_head_; }

std::optional<SegmentLog::SealedSegment> SegmentLog::oldest_sealed() const {
    const Impl& s = *impl_;
    if (s.segments_.size() < 2) return std::nullopt;
    const Segment& seg = s.segments_.front();
    if (!seg.on_disk || seg.durable_records == 0) return std::nullopt;
    std::error_code ec;
    const auto written = fs::last_write_time(seg.path, ec);
    if (ec) return std::nullopt;
    return SealedSegment{seg.base_seq, seg.base_seq + seg.durable_records - 1, seg.durable_bytes,
                         written};
}

void SegmentLog::drop_oldest_segment() {
    Impl& s = *impl_;
    if (s.segments_.size() < 2) {
        throw LogError("segment log: the only segment is the one appended to; nothing to drop");
    }
    const Segment seg = s.segments_.front();
    std::error_code ec;
    fs::remove(detail::seal_path(seg.path), ec);
    if (!fs::remove(seg.path, ec) || ec) {
        throw LogError(fmt::format("segment log: cannot delete {}: {}", seg.path.string(),
                                   ec ? ec.message() : "it is missing"));
    }
    detail::sync_all(s.dir_fd_.get(), s.options_.dir);
    s.segments_.erase(s.segments_.begin());
}

std::uint64_t SegmentLog::first_seq() const {
    // The first segment always holds the first record, or is the empty one named head() + 1.
    return impl_->segments_.empty() ? impl_->head_ + 1 : impl_->segments_.front().base_seq;
}

std::vector<Record> SegmentLog::read(std::uint64_t from, std::size_t max_records,
                                     std::size_t max_bytes) const {
    std::vector<Record> out;
    if (max_records == 0) return out;
    std::size_t bytes = 0;
    impl_->for_each_durable(from, [&](const RecordView& rec) {
        if (!out.empty() && bytes + rec.payload.size() > max_bytes) return false;
        out.push_back(Record{rec.seq, std::string(rec.payload)});
        bytes += rec.payload.size();
        return out.size() < max_records;
    });
    return out;
}

void SegmentLog::scan(std::uint64_t from, const std::function<bool(const Record&)>& visit) const {
    Record record;  // reused, so a long scan allocates only when a payload outgrows it
    impl_->for_each_durable(from, [&](const RecordView& rec) {
        record.seq = rec.seq;
        record.payload.assign(rec.payload);
        return visit(record);
    });
}

const RecoveryReport& SegmentLog::recovery() const { return impl_->report_; }

}  // namespace op::log
