// Sequential reader of framed records in one segment file, between two offsets. It preads
// large chunks into one buffer and hands out views into it, so walking a segment costs a
// syscall per chunk, not per record. It only classifies what it finds; the caller decides
// whether a bad record is a torn tail to cut or corruption to refuse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace op::log::detail {

enum class ReadStatus {
    ok,
    end,           // exactly at the end offset: no more records
    short_header,  // fewer than kHeaderBytes left before the end
    bad_length,    // payload_len above kMaxPayloadBytes
    past_end,      // payload runs past the end
    bad_crc,
};

struct RecordView {
    std::uint64_t offset = 0;  // of the header, also filled in for bad records
    std::uint64_t seq = 0;     // header fields: meaningful unless short_header
    std::uint32_t payload_len = 0;
    std::string_view payload;  // valid until the next call to next(); set only when ok
};

class RecordReader {
public:
    // fd and path must outlive the reader.
    RecordReader(int fd, const std::filesystem::path& path, std::uint64_t offset, std::uint64_t end,
                 std::size_t chunk_bytes);

    // On ok the reader moves past the record; otherwise it stays at the bad record.
    ReadStatus next(RecordView& out);

    // Where the next record starts (or the bad one, after a failure).
    std::uint64_t offset() const noexcept { return buf_offset_ + pos_; }

private:
    bool fill(std::size_t need);

    int fd_;
    const std::filesystem::path* path_;
    std::uint64_t end_;
    std::size_t chunk_bytes_;
    std::string buf_;
    std::uint64_t buf_offset_;  // file offset of buf_[0]
    std::size_t pos_ = 0;       // next unread byte in buf_
    std::size_t len_ = 0;       // valid bytes in buf_
};

}  // namespace op::log::detail
