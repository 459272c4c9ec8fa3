// A one-line progress bar on stderr, redrawn a few times a second by its own thread while a
// run goes on. Silent when stderr is not a terminal (make bench piped to a file, CTest), so
// logs hold results only. The status callback is called from the bar's thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace op::bench {

class ProgressBar {
public:
    // `fraction` in [0, 1]; `status` is the text after the bar (rate, errors...).
    ProgressBar(std::string label, std::function<double()> fraction,
                std::function<std::string()> status);
    ~ProgressBar();  // clears the line
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    static bool enabled();

private:
    void draw() const;
    std::string label_;
    std::function<double()> fraction_;
    std::function<std::string()> status_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace op::bench
