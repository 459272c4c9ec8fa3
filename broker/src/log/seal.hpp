// A sealed segment's summary, written beside it (<base>.seal) once the segment is full and
// durable: its record count, its size and its sparse index. Recovery trusts a seal that agrees
// with the file's size and with the next segment's first seq, so a restart reads only the last
// segment, not the whole log. A record inside a sealed segment is still checked against its
// CRC whenever it is read.
#pragma once

#include <filesystem>
#include <optional>

#include "segment.hpp"

namespace op::log::detail {

struct Seal {
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    std::vector<IndexEntry> index;
};

std::filesystem::path seal_path(const std::filesystem::path& segment);

// Writes the seal of a complete, durable segment (aside, fsynced, renamed). Throws LogError.
void write_seal(const Segment& segment);

// The seal of `segment`, or nullopt when there is none or it is damaged.
std::optional<Seal> read_seal(const std::filesystem::path& segment);

}  // namespace op::log::detail
