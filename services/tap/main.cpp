// tap: watch events flow through the broker, live or from history.
#include <unistd.h>

#include <cstdio>
#include <set>

#include <spdlog/spdlog.h>

#include "event_line.hpp"
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
                             "CustomerNotified)";
        });
    app.add_option("--order", order_id, "only the events of this order id");
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
    CLI11_PARSE(app, argc, argv);

    op::runtime::setup_logging("tap", "warn");
    const auto& stop = op::runtime::install_stop_signals();
    const bool use_colour = !json && (colour == "always" || (colour == "auto" && isatty(1)));

    op::bus::SubscriberOptions options;
    options.endpoints = endpoints;
    for (const auto& t : topics) options.topics.push_back(*op::events::parse_type_name(t));
    options.from_seq = from_start ? 1 : std::max<std::uint64_t>(from, 1);
    options.from_head = !from_start && from == 0;

    try {
        op::bus::Subscriber subscriber(options);
        std::uint64_t printed = 0;
        while (!stop.load() && (count == 0 || printed < count)) {
            for (const auto& d : subscriber.poll(std::chrono::milliseconds(100))) {
                if (!order_id.empty() && d.event.order_id != order_id) continue;
                if (json) {
                    std::fputs(d.json.c_str(), stdout);
                    std::fputc('\n', stdout);
                } else {
                    std::fputs(op::tap::line(d.event, use_colour).c_str(), stdout);
                    std::fputc('\n', stdout);
                }
                if (count != 0 && ++printed >= count) break;
            }
            std::fflush(stdout);
        }
    } catch (const std::exception& e) {
        spdlog::critical("tap failed: {}", e.what());
        return 1;
    }
    return 0;
}
