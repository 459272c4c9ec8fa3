// Warnings about a flood (garbage at a socket, slow clients, refused handshakes) without the
// flood reaching the log: the first kBurst lines in each second are logged as they come, then
// one line a second says how many more there were and shows the latest. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

namespace op::runtime {

class RateLimitedLog {
    using Clock = std::chrono::steady_clock;

public:
    // `held_back` names what the summary line counts, e.g. "refusals".
    explicit RateLimitedLog(std::string held_back) : held_back_(std::move(held_back)) {}

    void warn(std::string line) {
        std::lock_guard lock(mu_);
        const auto now = Clock::now();
        if (now - window_start_ >= std::chrono::seconds(1)) {
            flush_locked();
            window_start_ = now;
        }
        if (in_window_++ < kBurst) {
            spdlog::warn("{}", line);
        } else {
            ++suppressed_;
            latest_ = std::move(line);
        }
    }

    // Call now and then (a loop's tick): logs the count left from a burst once it is over.
    void tick() {
        std::lock_guard lock(mu_);
        if (suppressed_ > 0 && Clock::now() - window_start_ >= std::chrono::seconds(1)) {
            flush_locked();
        }
    }

    // At shutdown: logs what is held back, whatever the time.
    void flush() {
        std::lock_guard lock(mu_);
        flush_locked();
    }

private:
    void flush_locked() {
        if (suppressed_ > 0) {
            spdlog::warn("{} more {} in the last second (the latest: {})", suppressed_,
                         held_back_, latest_);
        }
        suppressed_ = 0;
        in_window_ = 0;
    }

    static constexpr std::uint64_t kBurst = 20;
    const std::string held_back_;
    std::mutex mu_;
    Clock::time_point window_start_{};
    std::uint64_t in_window_ = 0;
    std::uint64_t suppressed_ = 0;
    std::string latest_;
};

}  // namespace op::runtime
