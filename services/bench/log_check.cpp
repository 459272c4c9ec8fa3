#include "log_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <unordered_map>

#include "op/bus/subscriber.hpp"
#include "op/events/ids.hpp"
#include "stop.hpp"

namespace op::bench {
namespace {

using Clock = std::chrono::steady_clock;
using WallTime = std::chrono::system_clock::time_point;

// The success chain, in order: the hops bench reports are between consecutive steps.
constexpr std::array<events::EventType, 5> kSuccessChain = {
    events::EventType::OrderPlaced, events::EventType::PaymentVerified,
    events::EventType::StockReserved, events::EventType::Shipped,
    events::EventType::CustomerNotified};
constexpr std::size_t kPlacedStep = 0;
constexpr std::size_t kNotifiedStep = kSuccessChain.size() - 1;

// What the log says of one order.
struct OrderTrace {
    // When its events of the success chain were stamped; zero: not seen. OrderPlaced and
    // CustomerNotified are the full chain's ends, whatever the outcome.
    std::array<WallTime, kSuccessChain.size()> at{};
    bool placed = false;    // its OrderPlaced is in the window read
    bool notified = false;  // it has a CustomerNotified
    std::string outcome;    // ... and what that said
    std::string reason;
};

WallTime ts_of(const events::Event& e) {
    return events::parse_timestamp(e.ts).value_or(WallTime{});
}

}  // namespace

std::uint64_t log_head(const bus::Endpoints& endpoints, std::chrono::milliseconds timeout) {
    bus::SubscriberOptions options;
    options.endpoints = endpoints;
    options.from_head = true;
    bus::Subscriber sub(options);
    const auto give_up = Clock::now() + timeout;
    while (!sub.caught_up()) {
        if (Clock::now() > give_up) {
            throw std::runtime_error(fmt::format(
                "the broker did not answer on {} / {} within {} ms: is it running, and are "
                "--live and --replay its endpoints?",
                endpoints.live, endpoints.replay, timeout.count()));
        }
        sub.poll(std::chrono::milliseconds(50));
    }
    return sub.head_seq();
}

ChainReport check_chain(const bus::Endpoints& endpoints, std::uint64_t from_seq,
                        const std::vector<Answer>& answers, std::chrono::milliseconds deadline) {
    const auto begun = Clock::now();
    bus::SubscriberOptions options;
    options.endpoints = endpoints;
    options.from_seq = from_seq;
    options.replay_batch = 5000;
    options.topics.assign(kSuccessChain.begin(), kSuccessChain.end());
    bus::Subscriber sub(options);

    std::unordered_map<std::string, OrderTrace> traces;
    ChainReport r;
    std::uint64_t open_orders = 0;  // placed, not yet notified
    const auto give_up = begun + deadline;
    while (Clock::now() < give_up) {
        throw_if_stopped();
        for (auto& d : sub.poll(std::chrono::milliseconds(100), 20000)) {
            const auto& e = d.event;
            auto& trace = traces[e.order_id];
            const auto step = static_cast<std::size_t>(
                std::find(kSuccessChain.begin(), kSuccessChain.end(), e.type()) -
                kSuccessChain.begin());
            if (step < kSuccessChain.size() && trace.at[step] == WallTime{}) {
                trace.at[step] = ts_of(e);
            }
            if (e.as<events::OrderPlaced>()) {
                if (!std::exchange(trace.placed, true) && !trace.notified) ++open_orders;
            } else if (const auto* s = e.as<events::StockReserved>()) {
                r.reserved[s->item] += s->quantity;
            } else if (const auto* n = e.as<events::CustomerNotified>()) {
                if (!std::exchange(trace.notified, true)) {
                    trace.outcome = n->outcome;
                    trace.reason = n->reason;
                    if (trace.placed) --open_orders;
                }
            }
        }
        if (sub.caught_up() && open_orders == 0 && sub.next_seq() > sub.head_seq()) break;
    }

    LatencySamples chain;
    std::array<LatencySamples, kSuccessChain.size() - 1> hops;
    WallTime first = WallTime::max();
    WallTime last = WallTime::min();
    for (const auto& [id, trace] : traces) {
        if (!trace.placed) continue;
        ++r.orders;
        const auto& at = trace.at;
        first = std::min(first, at[kPlacedStep]);
        if (!trace.notified) continue;
        ++r.terminal;
        if (trace.outcome == "success") ++r.succeeded;
        chain.add(std::chrono::duration_cast<Nanos>(at[kNotifiedStep] - at[kPlacedStep]));
        last = std::max(last, at[kNotifiedStep]);
        if (std::find(at.begin(), at.end(), WallTime{}) != at.end()) continue;  // not all five
        for (std::size_t i = 0; i + 1 < at.size(); ++i) {
            hops[i].add(std::chrono::duration_cast<Nanos>(at[i + 1] - at[i]));
        }
    }
    r.full_chain = chain.summarize();
    for (std::size_t i = 0; i < hops.size(); ++i) {
        r.hops.emplace_back(fmt::format("{} -> {}", events::type_name(kSuccessChain[i]),
                                        events::type_name(kSuccessChain[i + 1])),
                            hops[i].summarize());
    }
    if (r.terminal > 0 && last > first) {
        r.terminal_per_s = r.terminal / std::chrono::duration<double>(last - first).count();
    }
    if (r.terminal < r.orders) {
        r.problems.push_back(fmt::format("{} of {} orders not terminal after {} s",
                                         r.orders - r.terminal, r.orders, deadline.count() / 1000));
    }

    for (const auto& a : answers) {
        if (a.order_id.empty()) continue;
        ++r.answers_checked;
        const auto it = traces.find(a.order_id);
        if (it == traces.end() || !it->second.placed || !it->second.notified) {
            ++r.answered_not_found;
            if (r.problems.size() < 8) {
                r.problems.push_back(
                    fmt::format("order {} was answered {} but is not terminal in "
                                "the log",
                                a.order_id, a.status));
            }
            continue;
        }
        // Any terminal outcome agrees with an answer given before the decision.
        if (a.status == "pending" || a.status == "placed") continue;
        const bool agree = it->second.outcome == a.status &&
                           (a.status == "success" || it->second.reason == a.reason);
        if (!agree) {
            ++r.disagreements;
            if (r.problems.size() < 8) {
                r.problems.push_back(fmt::format("order {}: answered {} {}, the log says {} {}",
                                                 a.order_id, a.status, a.reason, it->second.outcome,
                                                 it->second.reason));
            }
        }
    }
    r.check_s = std::chrono::duration<double>(Clock::now() - begun).count();
    return r;
}

nlohmann::json to_json(const ChainReport& r) {
    return {{"orders", r.orders},
            {"terminal", r.terminal},
            {"succeeded", r.succeeded},
            {"terminal_per_s", r.terminal_per_s},
            {"full_chain_latency", to_json(r.full_chain)},
            {"hops", [&] {
                 auto hops = nlohmann::json::array();
                 for (const auto& [name, p] : r.hops) {
                     hops.push_back({{"hop", name}, {"latency", to_json(p)}});
                 }
                 return hops;
             }()},
            {"reserved", r.reserved},
            {"answers_checked", r.answers_checked},
            {"disagreements", r.disagreements},
            {"answered_not_found", r.answered_not_found},
            {"problems", r.problems},
            {"check_s", r.check_s}};
}

}  // namespace op::bench
