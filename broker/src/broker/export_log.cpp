#include "export_log.hpp"

#include <cstdio>

#include <fmt/format.h>

#include "op/bus/subscriber.hpp"

namespace op::broker {

std::uint64_t export_log(const ExportOptions& options, std::ostream& out,
                         const std::atomic<bool>& stop, int timeout_ms) {
    bus::SubscriberOptions sub_options;
    sub_options.endpoints = options.endpoints;
    sub_options.from_seq = options.from;
    sub_options.replay_batch = 5000;
    bus::Subscriber subscriber(sub_options);

    std::uint64_t written = 0;
    auto last_progress = std::chrono::steady_clock::now();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    bool heard = false;
    while (!stop.load()) {
        auto batch = subscriber.poll(std::chrono::milliseconds(100), 5000);
        heard = heard || subscriber.caught_up() || !batch.empty();
        if (!subscriber.refusal().empty()) {
            throw std::runtime_error(fmt::format("the broker refused to replay from seq {}: {}",
                                                 subscriber.next_seq(), subscriber.refusal()));
        }
        if (!heard && std::chrono::steady_clock::now() > give_up) {
            throw std::runtime_error(fmt::format(
                "no answer from the broker's replay endpoint {} (is the broker running? point "
                "--replay and --live at it)",
                options.endpoints.replay));
        }
        for (const auto& d : batch) {
            if (options.to != 0 && d.event.seq > options.to) return written;
            out << d.json << '\n';
            ++written;
        }
        const std::uint64_t last = subscriber.next_seq() - 1;
        if (options.progress && std::chrono::steady_clock::now() - last_progress >
                                    std::chrono::milliseconds(500)) {
            last_progress = std::chrono::steady_clock::now();
            std::fprintf(stderr, "\rexported %llu events, at seq %llu of %llu",
                         static_cast<unsigned long long>(written),
                         static_cast<unsigned long long>(last),
                         static_cast<unsigned long long>(subscriber.head_seq()));
        }
        if (subscriber.caught_up() && (options.to == 0 || last >= options.to)) break;
        if (options.to != 0 && last >= options.to) break;
    }
    out.flush();
    if (options.progress) std::fprintf(stderr, "\rexported %llu events%30s\n",
                                       static_cast<unsigned long long>(written), "");
    return written;
}

}  // namespace op::broker
