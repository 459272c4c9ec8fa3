#include "order_timeline.hpp"

#include <fmt/format.h>

#include "event_line.hpp"
#include "op/events/ids.hpp"

namespace op::tap {
namespace {

double ms(std::chrono::system_clock::duration d) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) /
           1000.0;
}

}  // namespace

std::string OrderTimeline::add(const events::Event& e, bool colour) {
    chain_.apply(e);
    int depth = 0;
    std::string hop = "";
    const auto ts = events::parse_timestamp(e.ts);
    if (auto cause = depth_.find(e.causation_id); cause != depth_.end()) {
        depth = cause->second + 1;
        auto cause_at = at_.find(e.causation_id);
        if (ts && cause_at != at_.end()) hop = fmt::format("+{:.3f} ms", ms(*ts - cause_at->second));
    } else if (ts) {
        hop = e.ts.size() > 11 ? e.ts.substr(11, e.ts.size() - 12) : e.ts;
    }
    depth_[e.id] = depth;
    if (ts) {
        at_[e.id] = *ts;
        if (first_ == std::chrono::system_clock::time_point{}) first_ = *ts;
        last_ = std::max(last_, *ts);
    }
    const std::string indent = depth == 0 ? "" : std::string(2 * (depth - 1), ' ') + "└─ ";
    const auto [start, end] = paint(tone(e), colour);
    const std::string name = indent + std::string(e.type_name());
    return fmt::format("  #{:<6} {}{:<30}{} {:>15}  {}", e.seq, start, name, end, hop,
                       summary(e));
}

std::string OrderTimeline::status() const {
    if (depth_.empty()) return "no events for this order yet";
    if (chain_.terminal()) {
        return fmt::format("finished: {} in {:.3f} ms", chain_.outcome(), ms(last_ - first_));
    }
    std::string waits;
    for (const auto& w : chain_.waiting_on()) waits += (waits.empty() ? "" : " and ") + w;
    return fmt::format("in flight: waiting on {} ({:.3f} ms since it was placed)", waits,
                       ms(std::chrono::system_clock::now() - first_));
}

}  // namespace op::tap
