// Startup recovery of a segment directory: checks every record's checksum and the seq
// continuity within and across segments, cuts a torn or corrupt tail off the last segment,
// and refuses (LogError) any damage whose removal would drop records that follow it.
#pragma once

#include <filesystem>
#include <vector>

#include "file_io.hpp"
#include "op/log/segment_log.hpp"
#include "segment.hpp"

namespace op::log::detail {

struct RecoveredLog {
    std::vector<Segment> segments;  // in seq order, all on disk, nothing pending
    Fd active_fd;                   // the last segment, open read-write; empty if none
    RecoveryReport report;
};

RecoveredLog recover_segments(const std::filesystem::path& dir);

}  // namespace op::log::detail
