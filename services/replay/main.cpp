// replay: feeds a recorded log's orders into a fresh system and compares the outcomes.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "op/bus/publisher.hpp"
#include "op/bus/subscriber.hpp"
#include "op/events/codec.hpp"
#include "op/runtime/process.hpp"
#include "outcomes.hpp"

namespace {

using Clock = std::chrono::steady_clock;

void progress(bool enabled, const char* what, std::size_t done, std::size_t total) {
    if (!enabled) return;
    const int width = 30;
    const int filled = total == 0 ? width : static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r%-10s [%s%s] %zu/%zu", what, std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total);
    if (done == total) std::fputc('\n', stderr);
}

}  // namespace

int main(int argc, char** argv) {
    op::bus::Endpoints endpoints;
    std::string file;
    int timeout_s = 120;
    bool only_differences = false;

    CLI::App app{"Replay a recorded event log: publish its OrderPlaced events, in their recorded "
                 "order, into a fresh running system (e.g. `make run` on an empty data dir), "
                 "wait for every order to finish, then print each order's recorded outcome "
                 "beside the new one and compare the final stock. Exits 0 when everything is "
                 "identical, 1 on any difference, 2 on bad input, 3 if orders did not finish."};
    app.add_option("file", file, "recorded log, NDJSON (as written by `broker export`)")
        ->required();
    op::runtime::add_endpoint_flags(app, endpoints, false);
    app.add_option("--timeout-s", timeout_s, "how long to wait for every order to finish")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_flag("--only-differences", only_differences,
                 "print only the orders whose outcome differs (and the summary)");
    op::runtime::SecurityFlags security;
    op::runtime::add_security_flags(app, security, "replay", "var/keys");
    CLI11_PARSE(app, argc, argv);
    op::runtime::setup_logging("replay", "warn");
    const auto& stop = op::runtime::install_stop_signals();
    const bool tty = isatty(2) != 0;

    // 1. The recorded log.
    std::ifstream in(file);
    if (!in) {
        spdlog::critical("cannot read {}", file);
        return 2;
    }
    op::replay::LogOutcomes recorded;
    std::vector<op::events::Event> placed;
    std::size_t line_no = 0;
    for (std::string line; std::getline(in, line);) {
        ++line_no;
        if (line.empty()) continue;
        auto d = op::events::decode(line);
        if (!d) {
            spdlog::critical("{}:{}: not an event: {}", file, line_no, d.error);
            return 2;
        }
        recorded.apply(*d.event);
        if (d.event->type() == op::events::EventType::OrderPlaced) placed.push_back(*d.event);
    }
    std::fprintf(stderr, "%s: %zu events, %zu orders\n", file.c_str(), line_no, placed.size());

    try {
        endpoints.curve = op::runtime::load_client_keys(security, "var/keys");
        // 2. Follow the system from its current head before publishing anything.
        op::bus::SubscriberOptions sub_options;
        sub_options.endpoints = endpoints;
        sub_options.from_head = true;
        op::bus::Subscriber subscriber(sub_options);
        const auto attach_deadline = Clock::now() + std::chrono::seconds(10);
        while (!subscriber.caught_up()) {
            subscriber.poll(std::chrono::milliseconds(100));
            if (stop.load()) return 130;
            if (Clock::now() > attach_deadline) {
                spdlog::critical("no answer from the broker at {} (is the system running?)",
                                 endpoints.replay);
                return 3;
            }
        }

        // 3. The recorded orders, in their recorded order, as they were.
        op::bus::Publisher publisher(endpoints);
        auto acks = publisher.publish_many(placed);
        std::size_t duplicates = 0;
        for (std::size_t i = 0; i < acks.size(); ++i) {
            const auto r = acks[i].get();
            if (r.status == op::bus::PublishStatus::Duplicate) ++duplicates;
            if (!r.durable()) {
                spdlog::critical("order {} was not accepted: {}", placed[i].order_id, r.error);
                return 3;
            }
            if (i % 256 == 0 || i + 1 == acks.size()) progress(tty, "published", i + 1, acks.size());
        }
        if (duplicates == placed.size() && !placed.empty()) {
            std::fprintf(stderr,
                         "every order is already in this system's log, so nothing ran again: "
                         "replay into a fresh system (an empty data dir)\n");
            return 2;
        }
        if (duplicates > 0) {
            std::fprintf(stderr,
                         "warning: %zu orders were already in this system's log; replay into a "
                         "fresh data dir for a meaningful comparison\n",
                         duplicates);
        }

        // 4. Wait for every order to finish in the new system.
        op::replay::LogOutcomes replayed;
        std::size_t finished = 0;
        const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
        while (finished < placed.size() && Clock::now() < deadline && !stop.load()) {
            for (const auto& d : subscriber.poll(std::chrono::milliseconds(100), 5000)) {
                const bool was = replayed.orders.contains(d.event.order_id) &&
                                 replayed.orders[d.event.order_id].terminal();
                replayed.apply(d.event);
                if (!was && recorded.orders.contains(d.event.order_id) &&
                    replayed.orders[d.event.order_id].terminal()) {
                    ++finished;
                }
            }
            progress(tty, "finished", finished, placed.size());
        }

        // 5. Side by side.
        const auto differences = op::replay::compare(recorded, replayed);
        std::set<std::string> differing;
        for (const auto& d : differences) differing.insert(d.order_id);
        std::printf("%-34s %-32s %-32s\n", "order", "recorded", "replayed");
        for (const auto& id : recorded.order_ids) {
            const bool differs = differing.contains(id);
            if (only_differences && !differs) continue;
            auto it = replayed.orders.find(id);
            std::printf("%-34s %-32s %-32s%s\n", id.c_str(),
                        recorded.orders.at(id).outcome().c_str(),
                        it == replayed.orders.end() ? "missing" : it->second.outcome().c_str(),
                        differs ? "  DIFFERENT" : "");
        }
        for (const auto& d : differences) {
            if (!d.order_id.empty()) continue;
            std::printf("%-34s %-32s %-32s  DIFFERENT\n", d.what.c_str(), d.recorded.c_str(),
                        d.replayed.c_str());
        }
        std::printf("%zu orders replayed, %zu finished, %zu differences\n", placed.size(),
                    finished, differences.size());
        if (finished < placed.size()) return 3;
        return differences.empty() ? 0 : 1;
    } catch (const std::exception& e) {
        spdlog::critical("replay failed: {}", e.what());
        return 2;
    }
}
