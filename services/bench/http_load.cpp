#include "http_load.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "progress.hpp"
#include "stop.hpp"

namespace op::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Shared {
    std::atomic<std::uint64_t> next_index{0};  // open loop: the next order's slot
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> answered{0};
    std::atomic<std::uint64_t> errors{0};
};

// What one connection saw; merged after the run so the hot path takes no lock.
struct WorkerResult {
    LatencySamples latency;
    std::uint64_t sent = 0;
    std::uint64_t answered = 0;
    std::uint64_t succeeded = 0;
    std::map<std::string, std::uint64_t> outcomes;
    std::map<std::string, std::uint64_t> errors;
    std::vector<Answer> answers;
    Clock::time_point last_answer{};
};

std::string order_id_of(const nlohmann::json& body) {
    const auto it = body.find("order_id");
    if (it == body.end()) return {};
    // The original system numbers its orders; ours names them.
    return it->is_string() ? it->get<std::string>() : it->dump();
}

void classify(const httplib::Result& res, const LoadOptions& options, WorkerResult& out,
              Shared& shared, Clock::duration latency) {
    auto error = [&](std::string kind) {
        ++out.errors[std::move(kind)];
        ++shared.errors;
    };
    if (!res) {
        error("connection: " + httplib::to_string(res.error()));
        return;
    }
    const auto body = nlohmann::json::parse(res->body, nullptr, false);
    const std::string status =
        body.is_object() && body.contains("status") && body["status"].is_string()
            ? body["status"].get<std::string>()
            : std::string();
    // POST /orders answers 202 "placed" once the order is durable: that is its answer, and
    // its latency is the time to durable, not to a decision.
    const bool accepted = options.path == "/orders" && res->status == 202 && status == "placed";
    if (res->status == 202 && !accepted) {
        // Durable but undecided within the service's bound: not an answer to time.
        error("http 202 pending");
        if (options.keep_answers) out.answers.push_back({order_id_of(body), "pending", {}});
        return;
    }
    if (res->status != 200 && !accepted) {
        error(fmt::format("http {}", res->status));
        return;
    }
    if (status != "success" && status != "failed" && !accepted) {
        error("http 200 without a status");
        return;
    }
    const std::string reason = body.value("reason", std::string());
    ++out.answered;
    ++shared.answered;
    out.latency.add(latency);
    out.last_answer = Clock::now();
    if (accepted) {
        ++out.outcomes["placed"];
    } else if (status == "success") {
        ++out.succeeded;
        ++out.outcomes["success"];
    } else {
        ++out.outcomes["failed: " + reason];
    }
    if (options.keep_answers) out.answers.push_back({order_id_of(body), status, reason});
}

void worker(const LoadOptions& options, Shared& shared, Clock::time_point start,
            Clock::time_point end, WorkerResult& out) {
    httplib::Client client(options.host, options.port);
    client.set_keep_alive(true);
    // httplib writes headers and body separately; with Nagle on, the body waits for the
    // server's delayed ACK (~40 ms), which would be measured as the system's latency.
    client.set_tcp_nodelay(true);
    client.set_connection_timeout(std::chrono::seconds(2));
    client.set_read_timeout(options.request_timeout);
    client.set_write_timeout(std::chrono::seconds(5));
    const httplib::Headers headers;
    const bool open_loop = options.rate > 0;
    const auto interval =
        open_loop ? std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / options.rate))
                  : std::chrono::nanoseconds(0);
    // An open-loop run that fell behind still sends its backlog, but only for a while: what is
    // left after that is reported as not sent rather than stretching the run without end.
    const auto hard_end = end + (end - start) / 2 + std::chrono::seconds(2);
    out.latency.reserve(1 << 14);
    while (!stop_requested()) {
        Clock::time_point due;
        if (open_loop) {
            const std::uint64_t i = shared.next_index.fetch_add(1);
            due = start + interval * static_cast<std::int64_t>(i);
            if (due >= end) break;
            if (Clock::now() > hard_end) {
                ++out.errors["not sent: generator behind schedule"];
                ++shared.errors;
                continue;
            }
            std::this_thread::sleep_until(due);
        } else {
            due = Clock::now();
            if (due >= end) break;
        }
        ++out.sent;
        ++shared.sent;
        auto res = client.Post(options.path, headers, options.body, "application/json");
        classify(res, options, out, shared, Clock::now() - due);
    }
}

}  // namespace

LoadResult run_http_load(const LoadOptions& options) {
    Shared shared;
    std::vector<WorkerResult> results(static_cast<std::size_t>(options.concurrency));
    LoadResult r;
    r.options = options;
    r.started = std::chrono::system_clock::now();
    const auto start = Clock::now() + std::chrono::milliseconds(20);  // every thread ready
    const auto end = start + options.duration;
    {
        ProgressBar bar(
            options.label,
            [&] {
                return std::chrono::duration<double>(Clock::now() - start) /
                       std::chrono::duration<double>(options.duration);
            },
            [&] {
                const double s = std::chrono::duration<double>(Clock::now() - start).count();
                return fmt::format("{} answered, {:.0f}/s, {} errors", shared.answered.load(),
                                   s > 0 ? shared.answered.load() / s : 0.0, shared.errors.load());
            });
        std::vector<std::thread> threads;
        for (auto& out : results) {
            threads.emplace_back([&] { worker(options, shared, start, end, out); });
        }
        for (auto& t : threads) t.join();
    }
    r.finished = std::chrono::system_clock::now();
    throw_if_stopped();
    LatencySamples all;
    auto last = start;
    for (auto& w : results) {
        all.merge(w.latency);
        r.sent += w.sent;
        r.answered += w.answered;
        r.succeeded += w.succeeded;
        for (auto& [k, v] : w.outcomes) r.outcomes[k] += v;
        for (auto& [k, v] : w.errors) {
            r.errors[k] += v;
            r.error_count += v;
        }
        r.answers.insert(r.answers.end(), std::make_move_iterator(w.answers.begin()),
                         std::make_move_iterator(w.answers.end()));
        last = std::max(last, w.last_answer);
    }
    // Throughput over the time orders were actually being answered: for a closed loop that is
    // the duration plus the last requests' tail; for an open loop that fell behind, longer.
    r.wall_s = std::chrono::duration<double>(std::max(last, end) - start).count();
    r.decision = all.summarize();
    return r;
}

nlohmann::json to_json(const LoadResult& r) {
    return {{"label", r.options.label},
            {"mode", r.options.rate > 0 ? "open" : "closed"},
            {"concurrency", r.options.concurrency},
            {"rate", r.options.rate},
            {"duration_s", r.options.duration.count() / 1000.0},
            {"wall_s", r.wall_s},
            {"sent", r.sent},
            {"answered", r.answered},
            {"succeeded", r.succeeded},
            {"answered_per_s", r.answered_per_s()},
            {"outcomes", r.outcomes},
            {"errors", r.errors},
            {"error_count", r.error_count},
            {"decision_latency", to_json(r.decision)}};
}

}  // namespace op::bench
