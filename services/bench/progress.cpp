#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace op::bench {

bool ProgressBar::enabled() { return ::isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label, std::function<double()> fraction,
                         std::function<std::string()> status)
    : label_(std::move(label)), fraction_(std::move(fraction)), status_(std::move(status)) {
    if (!enabled()) return;
    thread_ = std::thread([this] {
        while (!stop_.load()) {
            draw();
            for (int i = 0; i < 5 && !stop_.load(); ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    });
}

ProgressBar::~ProgressBar() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
}

void ProgressBar::draw() const {
    constexpr int kWidth = 30;
    const double f = std::clamp(fraction_(), 0.0, 1.0);
    const int filled = static_cast<int>(f * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.append(static_cast<std::size_t>(kWidth - filled), '.');
    std::fprintf(stderr, "\r\033[K%-28s [%s] %3d%%  %s", label_.c_str(), bar.c_str(),
                 static_cast<int>(f * 100), status_().c_str());
    std::fflush(stderr);
}

}  // namespace op::bench
