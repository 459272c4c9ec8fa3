#include "record_reader.hpp"

#include <algorithm>
#include <cstring>

#include "file_io.hpp"
#include "record_format.hpp"

namespace op::log::detail {

RecordReader::RecordReader(int fd, const std::filesystem::path& path, std::uint64_t offset,
                           std::uint64_t end, std::size_t chunk_bytes)
    : fd_(fd), path_(&path), end_(end), chunk_bytes_(chunk_bytes), buf_offset_(offset) {}

ReadStatus RecordReader::next(RecordView& out) {
    out = RecordView{};
    out.offset = offset();
    if (out.offset >= end_) return ReadStatus::end;
    if (!fill(kHeaderBytes)) return ReadStatus::short_header;

    const RecordHeader header = decode_header(buf_.data() + pos_);
    out.seq = header.seq;
    out.payload_len = header.payload_len;
    if (header.payload_len > kMaxPayloadBytes) return ReadStatus::bad_length;
    const std::size_t total = kHeaderBytes + header.payload_len;
    if (!fill(total)) return ReadStatus::past_end;

    const std::string_view payload(buf_.data() + pos_ + kHeaderBytes, header.payload_len);
    if (record_crc(header.seq, payload) != header.crc) return ReadStatus::bad_crc;
    out.payload = payload;
    pos_ += total;
    return ReadStatus::ok;
}

bool RecordReader::fill(std::size_t need) {
    if (len_ - pos_ >= need) return true;
    if (offset() + need > end_) return false;

    // Slide the unread tail to the front so the buffer never grows past one chunk (or one
    // record, for records larger than a chunk).
    if (pos_ > 0) {
        std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
        buf_offset_ += pos_;
        len_ -= pos_;
        pos_ = 0;
    }
    // A chunk, but never more than the range holds: reading a small segment must not allocate
    // (and zero) a whole chunk.
    const std::size_t want = std::max(
        need, static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes_, end_ - buf_offset_)));
    if (buf_.size() < want) buf_.resize(want);

    const std::uint64_t file_pos = buf_offset_ + len_;
    const std::size_t room = buf_.size() - len_;
    const auto to_read = static_cast<std::size_t>(std::min<std::uint64_t>(room, end_ - file_pos));
    len_ += pread_full(fd_, buf_.data() + len_, to_read, file_pos, *path_);
    return len_ >= need;  // short only if the file shrank under us
}

}  // namespace op::log::detail
