#include "recovery.hpp"

#include <fcntl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "record_format.hpp"
#include "record_reader.hpp"
#include "seal.hpp"

namespace op::log::detail {
namespace {

namespace fs = std::filesystem;

// Large sequential reads: recovery touches every byte of the log once.
constexpr std::size_t kRecoveryChunkBytes = 1u << 20;

struct SegmentFile {
    std::uint64_t base_seq;
    fs::path path;
};

std::vector<SegmentFile> list_segment_files(const fs::path& dir) {
    std::vector<SegmentFile> files;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) throw LogError("list " + dir.string() + ": " + ec.message());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) throw LogError("list " + dir.string() + ": " + ec.message());
        if (it->path().filename().string().ends_with(".seal.tmp")) {
            std::error_code ignored;  // a seal a crash interrupted: written again when needed
            fs::remove(it->path(), ignored);
            continue;
        }
        const auto base = parse_segment_file_name(it->path().filename().string());
        if (!base) continue;  // not ours: leave operators' notes and moved-aside files alone
        files.push_back(SegmentFile{*base, it->path()});
    }
    if (ec) throw LogError("list " + dir.string() + ": " + ec.message());
    std::sort(files.begin(), files.end(),
              [](const SegmentFile& a, const SegmentFile& b) { return a.base_seq < b.base_seq; });
    return files;
}

std::string describe(ReadStatus status, const RecordView& rec, std::uint64_t file_size) {
    switch (status) {
        case ReadStatus::short_header:
            return fmt::format("torn record header ({} of {} bytes)", file_size - rec.offset,
                               kHeaderBytes);
        case ReadStatus::bad_length:
            return fmt::format("corrupt record length {} (limit {})", rec.payload_len,
                               kMaxPayloadBytes);
        case ReadStatus::past_end:
            return fmt::format("torn record: its {} byte payload runs past the end of the file",
                               rec.payload_len);
        case ReadStatus::bad_crc:
            return fmt::format("checksum mismatch in record (seq field {}, {} byte payload)",
                               rec.seq, rec.payload_len);
        case ReadStatus::ok:
        case ReadStatus::end:
            break;
    }
    return "unexpected reader state";
}

// A record whose extent is known (only its checksum failed) and which is immediately
// followed by the next expected record was not a torn write at the end of the log: cutting
// it would drop records that were likely acknowledged.
std::optional<std::uint64_t> next_valid_record_offset(int fd, const fs::path& path,
                                                      ReadStatus status, const RecordView& bad,
                                                      std::uint64_t file_size,
                                                      std::uint64_t expected_seq) {
    if (status != ReadStatus::bad_crc) return std::nullopt;
    const std::uint64_t next = bad.offset + kHeaderBytes + bad.payload_len;
    if (next + kHeaderBytes > file_size) return std::nullopt;
    RecordReader reader(fd, path, next, file_size, 64u << 10);
    RecordView rec;
    if (reader.next(rec) == ReadStatus::ok && rec.seq == expected_seq + 1) return next;
    return std::nullopt;
}

// Whether bytes [from, to) of the file are all zero: the zeros the log writes ahead of its
// records (SegmentLog::kPreallocateBytes), with no record after them.
bool zero_tail(int fd, const fs::path& path, std::uint64_t from, std::uint64_t to) {
    std::vector<char> buf(std::min<std::uint64_t>(to - from, kRecoveryChunkBytes));
    while (from < to) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - from));
        const std::size_t got = pread_full(fd, buf.data(), want, from, path);
        if (got == 0) return true;  // the file shrank under us: nothing after `from`
        if (std::any_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got),
                        [](char c) { return c != 0; })) {
            return false;
        }
        from += got;
    }
    return true;
}

}  // namespace

RecoveredLog recover_segments(const fs::path& dir) {
    RecoveredLog out;
    const std::vector<SegmentFile> files = list_segment_files(dir);
    std::uint64_t expected = files.empty() ? 1 : files.front().base_seq;
    if (expected == 0) {
        throw LogError(
            fmt::format("{}: seqs start at 1, so this segment name is not one the "
                        "log wrote; move the file aside",
                        files.front().path.string()));
    }
    if (expected > 1) {
        spdlog::warn(
            "segment log {}: the oldest segment starts at seq {}; earlier records are "
            "no longer in the log",
            dir.string(), expected);
    }

    for (std::size_t i = 0; i < files.size(); ++i) {
        const bool last = i + 1 == files.size();
        const fs::path& path = files[i].path;
        if (files[i].base_seq != expected) {
            throw LogError(fmt::format(
                "{}: segment starts at seq {} but the log before it ends at seq {}, so a "
                "segment is missing or misnamed; restore it from backup, or move this and all "
                "later segments aside to keep the log up to seq {}",
                path.string(), files[i].base_seq, expected - 1, expected - 1));
        }

        Segment seg;
        seg.base_seq = files[i].base_seq;
        seg.path = path;
        seg.on_disk = true;
        Fd fd = open_file(path, last ? O_RDWR : O_RDONLY);
        const std::uint64_t size = file_size(fd.get(), path);

        // A full segment whose seal agrees with its size and with where the next one starts
        // is not read: a restart costs the last segment, not the whole log.
        if (!last) {
            const auto seal = read_seal(path);
            if (seal && seal->records > 0 && seal->bytes == size &&
                seg.base_seq + seal->records == files[i + 1].base_seq &&
                !seal->index.empty() && seal->index.front().seq == seg.base_seq &&
                seal->index.front().offset == 0) {
                seg.durable_records = seal->records;
                seg.durable_bytes = seal->bytes;
                seg.allocated_bytes = seal->bytes;
                seg.index = seal->index;
                seg.sealed = true;
                expected += seal->records;
                out.report.records += seal->records;
                ++out.report.sealed_segments;
                out.segments.push_back(std::move(seg));
                continue;
            }
        }

        RecordReader reader(fd.get(), path, 0, size, kRecoveryChunkBytes);
        RecordView rec;
        ReadStatus status;
        while ((status = reader.next(rec)) == ReadStatus::ok) {
            if (rec.seq != expected) {
                throw LogError(fmt::format(
                    "{}: the record at offset {} has seq {} where {} was expected although its "
                    "checksum is valid, so records were copied or moved in; move the segment "
                    "aside or restore it from backup",
                    path.string(), rec.offset, rec.seq, expected));
            }
            seg.note_record(rec.seq, rec.offset);
            ++seg.durable_records;
            ++expected;
        }
        seg.durable_bytes = reader.offset();
        seg.allocated_bytes = size;
        if (status != ReadStatus::end && zero_tail(fd.get(), path, rec.offset, size)) {
            // The clean end. A full segment keeps no zeros (its seal gives its size).
            status = ReadStatus::end;
            if (!last) {
                const Fd writable = open_file(path, O_RDWR);
                truncate_file(writable.get(), rec.offset, path);
                sync_all(writable.get(), path);
                seg.allocated_bytes = rec.offset;
            }
        }

        if (status != ReadStatus::end) {
            const std::string what = describe(status, rec, size);
            if (!last) {
                throw LogError(fmt::format(
                    "{}: {} at offset {}, and later segments hold newer records, so cutting "
                    "here would drop acknowledged events; restore this segment from backup, or "
                    "move it and all later segments aside to keep the log up to seq {}",
                    path.string(), what, rec.offset, expected - 1));
            }
            if (const auto next =
                    next_valid_record_offset(fd.get(), path, status, rec, size, expected)) {
                throw LogError(fmt::format(
                    "{}: {} at offset {}, followed by a valid record (seq {}) at offset {}, so "
                    "this is corruption, not a torn write, and cutting it would drop "
                    "acknowledged events; restore the segment from backup, or move it aside to "
                    "keep the log up to seq {}",
                    path.string(), what, rec.offset, expected + 1, *next, expected - 1));
            }
            truncate_file(fd.get(), rec.offset, path);
            sync_all(fd.get(), path);
            seg.allocated_bytes = rec.offset;
            out.report.truncated_bytes = size - rec.offset;
            out.report.truncation_reason =
                fmt::format("{} at offset {} of {}: cut {} bytes, the log ends at seq {}", what,
                            rec.offset, path.string(), size - rec.offset, expected - 1);
            spdlog::warn("segment log recovery: {}", out.report.truncation_reason);
        }

        if (seg.durable_records == 0 && !last) {
            throw LogError(fmt::format("{}: empty segment in the middle of the log; move it aside",
                                       path.string()));
        }
        out.report.records += seg.durable_records;
        if (!last) {
            // Read in full this once (a log from before seals, or a seal lost in a crash).
            try {
                write_seal(seg);
                seg.sealed = true;
            } catch (const LogError& e) {
                spdlog::warn("segment log: cannot seal {} ({}); it is read again at the next "
                             "start",
                             path.string(), e.what());
            }
        }
        if (last) out.active_fd = std::move(fd);
        out.segments.push_back(std::move(seg));
    }

    out.report.segments = files.size();
    out.report.head_seq = expected - 1;
    return out;
}

}  // namespace op::log::detail
