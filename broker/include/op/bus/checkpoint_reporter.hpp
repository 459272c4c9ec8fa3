// Reports a consumer's checkpoint to the broker as it moves, at most twice a second (what
// retention waits for; see Publisher::report_checkpoint). Call it after every commit and when
// idle: a value held back by the rate limit goes out on a later call.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "op/bus/publisher.hpp"

namespace op::bus {

class CheckpointReporter {
public:
    CheckpointReporter(Publisher& publisher, std::string consumer)
        : publisher_(publisher), consumer_(std::move(consumer)) {}

    void operator()(std::uint64_t checkpoint) {
        const auto now = std::chrono::steady_clock::now();
        if (checkpoint == reported_ || now < next_) return;
        publisher_.report_checkpoint(consumer_, checkpoint);
        reported_ = checkpoint;
        next_ = now + std::chrono::milliseconds(500);
    }

private:
    Publisher& publisher_;
    std::string consumer_;
    std::uint64_t reported_ = 0;
    std::chrono::steady_clock::time_point next_{};
};

}  // namespace op::bus
