// The HTTP load generator: N keep-alive connections, all driven by one epoll thread, posting
// orders closed loop (each connection sends its next order when the previous one is answered)
// or open loop (orders are due at a fixed rate whatever the answers do).
//
// Open loop measures each order's latency from the time it was due, not from when a free
// connection got round to sending it: when the system stalls, the orders that should have gone
// out meanwhile carry the stall in their latency (no coordinated omission).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "latency.hpp"

namespace op::bench {

struct LoadOptions {
    std::string label = "load";
    std::string host = "127.0.0.1";
    int port = 5000;
    std::string path = "/place-order";
    std::string item = "phone";  // what `body` orders: the stock check follows it
    std::string body = R"({"item":"phone","amount":1000})";
    int concurrency = 1;  // connections; in open loop, the most orders in flight
    double rate = 0;      // orders/s, open loop; 0: closed loop
    std::chrono::milliseconds duration{5000};
    std::chrono::milliseconds request_timeout{15000};
    bool keep_answers = true;  // record each answer's order id, status and reason
};

// One decided answer, kept to compare with the log afterwards.
struct Answer {
    std::string order_id;
    std::string status;  // "success", "failed", "pending" (202 from /place-order), "placed"
    std::string reason;
};

struct LoadResult {
    LoadOptions options;
    double wall_s = 0;       // from the first send to the last answer
    std::uint64_t sent = 0;  // requests sent
    // 200 answers with a decided status (success or failed); for /orders, 202 "placed"
    std::uint64_t answered = 0;
    std::uint64_t succeeded = 0;
    std::map<std::string, std::uint64_t> outcomes;  // "success", "failed: Item out of stock"
    std::map<std::string, std::uint64_t> errors;    // "http 503", "connection: Read", ...
    std::uint64_t error_count = 0;
    Percentiles decision;  // of the answered requests (for /orders: until durable)
    std::vector<Answer> answers;
    std::chrono::system_clock::time_point started;
    std::chrono::system_clock::time_point finished;

    double answered_per_s() const { return wall_s > 0 ? answered / wall_s : 0; }
};

LoadResult run_http_load(const LoadOptions& options);

nlohmann::json to_json(const LoadResult& r);

}  // namespace op::bench
