// On-disk framing of one log record:
//   u32 payload_len | u32 crc32 | u64 seq | payload      (little-endian)
// where crc32 is zlib's CRC-32 over the 8 seq bytes followed by the payload, so a record
// copied to the wrong place (right bytes, wrong seq) fails its checksum too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "op/log/segment_log.hpp"

namespace op::log::detail {

inline constexpr std::size_t kHeaderBytes = SegmentLog::kHeaderBytes;
inline constexpr std::size_t kMaxPayloadBytes = SegmentLog::kMaxPayloadBytes;

struct RecordHeader {
    std::uint32_t payload_len = 0;
    std::uint32_t crc = 0;
    std::uint64_t seq = 0;
};

// in must hold kHeaderBytes.
RecordHeader decode_header(const char* in) noexcept;

std::uint32_t record_crc(std::uint64_t seq, std::string_view payload) noexcept;

// Appends the framed record to out (amortised: no allocation once out has grown).
void append_record(std::string& out, std::uint64_t seq, std::string_view payload);

}  // namespace op::log::detail
