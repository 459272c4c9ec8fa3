// Rate-limited logging of refused requests, so a flood of garbage cannot flood the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace op::broker {

// The first kBurst refusals in each second are logged line by line, then one line per second
// says how many more there were. Not thread-safe: one per thread.
class RefusalLog {
    using Clock = std::chrono::steady_clock;

public:
    void refused(std::string_view what, std::string_view reason) {
        const auto now = Clock::now();
        if (now - window_start_ >= std::chrono::seconds(1)) {
            flush();
            window_start_ = now;
        }
        if (in_window_++ < kBurst) {
            spdlog::warn("refused a {}: {}", what, reason);
        } else {
            ++suppressed_;
            last_ = fmt::format("{}: {}", what, reason);
        }
    }

    // Called from the loop, so a count left over from a burst is logged once it is over.
    void tick() {
        if (suppressed_ > 0 && Clock::now() - window_start_ >= std::chrono::seconds(1)) {
            flush();
        }
    }

    void flush() {
        if (suppressed_ > 0) {
            spdlog::warn("refused {} more requests in the last second (the latest: {})",
                         suppressed_, last_);
        }
        suppressed_ = 0;
        in_window_ = 0;
    }

private:
    static constexpr std::uint64_t kBurst = 20;
    Clock::time_point window_start_{};
    std::uint64_t in_window_ = 0;
    std::uint64_t suppressed_ = 0;
    std::string last_;
};

}  // namespace op::broker
