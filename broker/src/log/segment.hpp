// In-memory state of one segment file: its durable extent, a sparse index into it, and the
// records appended since the last sync (already framed, ready for one write()).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace op::log::detail {

// One index entry per 64 KiB of segment: a read seeks to the entry at or before its seq and
// walks at most this many bytes, while the index costs 16 bytes per 64 KiB of log
// (~16 KiB for a 64 MiB segment) whatever the record sizes.
inline constexpr std::uint64_t kIndexStrideBytes = 64u << 10;

struct IndexEntry {
    std::uint64_t seq = 0;
    std::uint64_t offset = 0;
};

struct Segment {
    std::uint64_t base_seq = 0;  // seq of its first record, also its file name
    std::filesystem::path path;
    bool on_disk = false;  // false until the first sync() creates the file
    bool sealed = false;   // full, durable, and its seal (seal.hpp) written
    std::uint64_t durable_bytes = 0;
    std::uint64_t durable_records = 0;
    // The file's size: its records, then zeros written ahead of them (see kPreallocateBytes).
    std::uint64_t allocated_bytes = 0;
    // Entries may run ahead of the durable records (appended, not yet synced); readers never
    // look past durable_head, so such entries are never chosen for a durable seq.
    std::vector<IndexEntry> index;
    std::string pending;
    std::uint64_t pending_records = 0;

    std::uint64_t size() const noexcept { return durable_bytes + pending.size(); }

    void note_record(std::uint64_t seq, std::uint64_t offset) {
        if (index.empty() || offset - index.back().offset >= kIndexStrideBytes) {
            index.push_back(IndexEntry{seq, offset});
        }
    }

    // The indexed record at or before seq (the first record when seq precedes the index).
    IndexEntry seek_hint(std::uint64_t seq) const noexcept;
};

std::string segment_file_name(std::uint64_t base_seq);
std::optional<std::uint64_t> parse_segment_file_name(std::string_view name);

}  // namespace op::log::detail
