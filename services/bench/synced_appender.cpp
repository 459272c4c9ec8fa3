#include "synced_appender.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "op/log/segment_log.hpp"

namespace op::bench {

SyncedAppender::SyncedAppender(std::filesystem::path path)
    : path_(std::move(path)), zeros_(op::log::SegmentLog::kPreallocateBytes, '\0') {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        throw std::runtime_error("floor: cannot create " + path_.string() + ": " +
                                 std::strerror(errno) + " (is the data dir writable?)");
    }
}

SyncedAppender::~SyncedAppender() {
    ::close(fd_);
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
}

void SyncedAppender::append(std::string_view record) {
    auto write_at = [this](std::string_view bytes, std::uint64_t at) {
        return ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(at)) ==
               static_cast<ssize_t>(bytes.size());
    };
    bool written = write_at(record, offset_);
    offset_ += record.size();
    if (written && offset_ >= allocated_) {
        written = write_at(zeros_, offset_);
        allocated_ = offset_ + zeros_.size();
    }
    if (!written || ::fdatasync(fd_) != 0) {
        throw std::runtime_error("floor: write/fdatasync on " + path_.string() + ": " +
                                 std::strerror(errno));
    }
}

}  // namespace op::bench
