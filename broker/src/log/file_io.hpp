// Thin throwing wrappers over the POSIX calls the segment log needs. Every failure becomes a
// LogError naming the call, the file and errno's text; EINTR and short transfers are retried
// here so the log's logic never sees them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <utility>

namespace op::log::detail {

// Owns one file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept;

private:
    int fd_ = -1;
};

[[noreturn]] void throw_errno(std::string_view call, const std::filesystem::path& path, int err);

// O_CLOEXEC is always added.
Fd open_file(const std::filesystem::path& path, int flags, mode_t mode = 0644);
std::uint64_t file_size(int fd, const std::filesystem::path& path);

// Writes all of data at offset, however many calls the kernel needs.
void pwrite_all(int fd, std::string_view data, std::uint64_t offset,
                const std::filesystem::path& path);
// The same, but a full disk or file system quota (ENOSPC, EDQUOT) or the file size limit
// (EFBIG) returns false instead of throwing: part of data may have been written.
bool pwrite_all_if_room(int fd, std::string_view data, std::uint64_t offset,
                        const std::filesystem::path& path);
// Reads until len bytes or end of file; returns the bytes read.
std::size_t pread_full(int fd, char* buf, std::size_t len, std::uint64_t offset,
                       const std::filesystem::path& path);

void sync_data(int fd, const std::filesystem::path& path);  // fdatasync
void sync_all(int fd, const std::filesystem::path& path);   // fsync (also for directories)
void truncate_file(int fd, std::uint64_t size, const std::filesystem::path& path);

// An exclusive advisory lock held for the descriptor's lifetime, so a second broker (or a
// tool) cannot recover and append to a log that is in use.
void lock_exclusive(int fd, const std::filesystem::path& path);

}  // namespace op::log::detail
