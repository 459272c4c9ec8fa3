#include "file_io.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "op/log/segment_log.hpp"

namespace op::log::detail {

void Fd::reset() noexcept {
    if (fd_ >= 0) {
        // Linux releases the descriptor even when close() reports EINTR: retrying could
        // close a descriptor another thread just opened.
        ::close(fd_);
        fd_ = -1;
    }
}

void throw_errno(std::string_view call, const std::filesystem::path& path, int err) {
    // std::system_category().message is thread-safe, unlike strerror.
    throw LogError(std::string(call) + " " + path.string() + ": " +
                   std::system_category().message(err));
}

Fd open_file(const std::filesystem::path& path, int flags, mode_t mode) {
    for (;;) {
        const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
        if (fd >= 0) return Fd(fd);
        if (errno != EINTR) throw_errno("open", path, errno);
    }
}

std::uint64_t file_size(int fd, const std::filesystem::path& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno("fstat", path, errno);
    return static_cast<std::uint64_t>(st.st_size);
}

namespace {

// Writes all of data at offset; 0, or the errno of the call that failed.
int pwrite_loop(int fd, std::string_view data, std::uint64_t offset) {
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        const ssize_t n = ::pwrite(fd, p, left, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO;  // would loop forever otherwise
        const auto written = static_cast<std::size_t>(n);
        p += written;
        left -= written;
        offset += written;
    }
    return 0;
}

}  // namespace

void pwrite_all(int fd, std::string_view data, std::uint64_t offset,
                const std::filesystem::path& path) {
    if (const int err = pwrite_loop(fd, data, offset)) throw_errno("write", path, err);
}

bool pwrite_all_if_room(int fd, std::string_view data, std::uint64_t offset,
                        const std::filesystem::path& path) {
    const int err = pwrite_loop(fd, data, offset);
    if (err == ENOSPC || err == EDQUOT || err == EFBIG) return false;
    if (err != 0) throw_errno("write", path, err);
    return true;
}

std::size_t pread_full(int fd, char* buf, std::size_t len, std::uint64_t offset,
                       const std::filesystem::path& path) {
    std::size_t done = 0;
    while (done < len) {
        const ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("read", path, errno);
        }
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return done;
}

void sync_data(int fd, const std::filesystem::path& path) {
    while (::fdatasync(fd) != 0) {
        if (errno != EINTR) throw_errno("fdatasync", path, errno);
    }
}

void sync_all(int fd, const std::filesystem::path& path) {
    while (::fsync(fd) != 0) {
        if (errno != EINTR) throw_errno("fsync", path, errno);
    }
}

void truncate_file(int fd, std::uint64_t size, const std::filesystem::path& path) {
    while (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
        if (errno != EINTR) throw_errno("ftruncate", path, errno);
    }
}

void lock_exclusive(int fd, const std::filesystem::path& path) {
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK) {
            throw LogError("log directory " + path.string() +
                           " is already open by another process or SegmentLog; stop the other "
                           "broker (or tool) first");
        }
        throw_errno("flock", path, errno);
    }
}

}  // namespace op::log::detail
