// tap: watch events flow through the broker, live or from history.
#include <unistd.h>

#include <cstdio>
#include <set>

#include <spdlog/spdlog.h>

#include "event_line.hpp"
#include "order_timeline.hpp"
#include "op/bus/subscriber.hpp"
#include "op/runtime/process.hpp"

int main(int argc, char** argv) {
    op::bus::Endpoints endpoints;
    std::vector<std::string> topics;
    std::string order_id;
    std::uint64_t from = 0;
    bool from_start = false;
    bool json = false;
    std::uint64_t count = 0;
    std::string colour = "auto";

    CLI::App app{"Watch the order pipeline's events as they flow through the broker, one line "
                 "each (time, seq, topic, order, what happened). Live by default; --from-start "
                 "or --from SEQ replays history first, then follows live with no gap."};
    app.add_option("--live", endpoints.live, "the broker's live endpoint")->capture_default_str();
    app.add_option("--replay", endpoints.replay, "the broker's replay endpoint")
        ->capture_default_str();
    app.add_option("--topic", topics,
                   "only these event types (repeatable), e.g. --topic OutOfStock --topic "
                   "PaymentRefunded")
        ->check([](const std::string& t) {
            return op::events::parse_type_name(t)
                       ? std::string()
                       : "unknown topic " + t +
                             " (topics: OrderPlaced, PaymentVerified, PaymentFailed, "
                             "StockReserved, OutOfStock, PaymentRefunded, Shipped, "
                             "CustomerNotified, DeadLetter)";
        });
    app.add_option("--order", order_id,
                   "only this order: its causal chain with each hop's duration and what it is "
                   "waiting on; exits once the order has finished (with --json: its events)");
    auto* from_opt = app.add_option("--from", from, "start at this seq (history, then live)");
    app.add_flag("--from-start", from_start, "start at the first event in the log")
        ->excludes(from_opt);
    app.add_flag("--json", json, "print each event as NDJSON, the envelope as on the wire");
    app.add_option("--count", count, "exit after printing this many events (0: never)")
        ->capture_default_str();
    app.add_option("--color", colour, "colour the lines by outcome: auto (when a terminal), "
                                      "always or never")
        ->capture_default_str()
        ->check(CLI::IsMember({"auto", "always", "never"}));
    op::runtime::SecurityFlags security;
    op::runtime::add_security_flags(app, security, "operator", "var/keys");
    CLI11_PARSE(app, argc, argv);

    op::runtime::setup_logging("tap", "warn");
    const auto& stop = op::runtime::install_stop_signals();
    const bool use_colour = !json && (colour == "always" || (colour == "auto" && isatty(1)));

    try {
        endpoints.curve = op::runtime::load_client_keys(security, "var/keys");
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 2;
    }
    op::bus::SubscriberOptions options;
    options.endpoints = endpoints;
    for (const auto& t : topics) options.topics.push_back(*op::events::parse_type_name(t));
    options.from_seq = from_start ? 1 : std::max<std::uint64_t>(from, 1);
    options.from_head = !from_start && from == 0;

    try {
        op::bus::Subscriber subscriber(options);
        std::uint64_t printed = 0;
        // With --order (and no --json) the order's causal chain is drawn instead of flat lines,
        // with what it is waiting on; the tap exits once the order has finished.
        const bool timeline_mode = !order_id.empty() && !json;
        op::tap::OrderTimeline timeline;
        std::string last_status;
        if (timeline_mode) std::printf("order %s\n", order_id.c_str());
        while (!stop.load() && (count == 0 || printed < count)) {
            auto batch = subscriber.poll(std::chrono::milliseconds(100));
            for (const auto& d : batch) {
                if (!order_id.empty() && d.event.order_id != order_id) continue;
                if (timeline_mode) {
                    std::puts(timeline.add(d.event, use_colour).c_str());
                } else if (json) {
                    std::fputs(d.json.c_str(), stdout);
                    std::fputc('\n', stdout);
                } else {
                    std::fputs(op::tap::line(d.event, use_colour).c_str(), stdout);
                    std::fputc('\n', stdout);
                }
                if (count != 0 && ++printed >= count) break;
            }
            if (timeline_mode && subscriber.caught_up() && batch.empty()) {
                // Say where the order stands whenever that changes (not on every idle poll).
                auto status = timeline.status();
                const auto key = status.substr(0, status.find(" ("));
                if (key != last_status) {
                    std::printf("  %s\n", status.c_str());
                    last_status = key;
                }
                if (timeline.terminal()) break;
            }
            std::fflush(stdout);
        }
    } catch (const std::exception& e) {
        spdlog::critical("tap failed: {}", e.what());
        return 1;
    }
    return 0;
}
