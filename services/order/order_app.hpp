// The order service: HTTP ingress that turns requests into OrderPlaced events, and the read
// model that follows every order event to answer them. Its threads: the HTTP loop (reads
// requests, publishes, writes answers; never blocks), the bus publisher's (acks), the read
// model's subscriber (applies events, answers the requests waiting for a decision), and a few
// query threads (GETs, Idempotency-Key lookups); the read model's database is shared under a
// mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "op/bus/endpoints.hpp"

namespace op::order {

struct OrderAppConfig {
    std::string host = "127.0.0.1";
    int port = 5000;
    std::filesystem::path data_dir = "var";
    bus::Endpoints endpoints;
    std::map<std::string, std::int64_t> initial_stock;  // seeds GET /inventory
    std::chrono::milliseconds decision_timeout{5000};
    // A non-terminal order with no new event for this long is reported as stalled.
    std::chrono::milliseconds stall_after{30000};
    std::size_t max_body_bytes = 64 * 1024;
    // Threads that answer from the read model (GETs, Idempotency-Key lookups).
    std::size_t query_threads = 2;
    // Open HTTP connections; more are closed at once (and logged).
    std::size_t max_connections = 4096;
    // POST /place-order requests waiting for their outcome at once; more get 503 at once, so
    // a stalled pipeline cannot pile up requests without bound.
    std::size_t max_sync_waits = 1024;
    // A request must arrive whole (head and body) within this of its first byte; a slower
    // client is cut off, so it cannot hold a connection's resources for ever.
    std::chrono::milliseconds request_timeout{10000};
    // Larger header sections get 431 (httplib alone reads any number of header lines).
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_header_count = 100;
};

class OrderApp {
public:
    // Opens the read model and binds the HTTP port; throws with a clear message on failure.
    explicit OrderApp(OrderAppConfig config);
    ~OrderApp();
    OrderApp(const OrderApp&) = delete;
    OrderApp& operator=(const OrderApp&) = delete;

    // Serves until `stop` is set, then shuts down HTTP, the subscriber and the publisher.
    void run(const std::atomic<bool>& stop);

    int port() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace op::order
