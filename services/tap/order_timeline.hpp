// `tap --order ID`: one order's causal chain drawn as it grows, each event indented under the
// event that caused it, with the time the hop took, and the step the order is waiting on.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "op/events/chain.hpp"
#include "op/events/event.hpp"

namespace op::tap {

class OrderTimeline {
public:
    // The line for one event of the order.
    std::string add(const events::Event& event, bool colour);
    // "waiting on inventory (2.1 ms so far)" / "finished: success in 4.83 ms".
    std::string status() const;
    bool terminal() const { return chain_.terminal(); }
    bool empty() const { return depth_.empty(); }

private:
    events::OrderChain chain_;
    std::map<std::string, int> depth_;  // event id -> depth under OrderPlaced
    std::map<std::string, std::chrono::system_clock::time_point> at_;
    std::chrono::system_clock::time_point first_{};
    std::chrono::system_clock::time_point last_{};
};

}  // namespace op::tap
