// Records appended and made durable the way the broker's log does it: each written into space
// zero-filled ahead of it (op::log::SegmentLog::kPreallocateBytes at a time), then fdatasync'd,
// so that most syncs carry no change of the file's size. Plain appends cost this VM ~20 % more
// per fdatasync, so a floor measured on them would not be one. The floor's fdatasync probe and
// the skeleton's relay both write through this.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace op::bench {

class SyncedAppender {
public:
    // Creates (or truncates) `path`; throws std::runtime_error saying what failed.
    explicit SyncedAppender(std::filesystem::path path);
    ~SyncedAppender();  // closes and removes the file
    SyncedAppender(const SyncedAppender&) = delete;
    SyncedAppender& operator=(const SyncedAppender&) = delete;

    // Writes `record` after the last one and waits for fdatasync; throws on a failed write.
    void append(std::string_view record);

private:
    std::filesystem::path path_;
    int fd_ = -1;
    std::uint64_t offset_ = 0;
    std::uint64_t allocated_ = 0;
    std::string zeros_;
};

}  // namespace op::bench
