// The broker: owns the durable event log and serves the three endpoints of protocol.hpp.
// Publishes are validated, de-duplicated by event id, numbered, appended in groups with one
// fdatasync per group, and only then acknowledged and fanned out live. Single-threaded: run()
// owns every socket and the log.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "op/bus/endpoints.hpp"

namespace op::broker {

struct BrokerConfig {
    std::filesystem::path data_dir = "var";  // the log lives in data_dir/broker/log
    bus::Endpoints endpoints;
    std::uint64_t segment_bytes = 64ull << 20;
    std::chrono::milliseconds heartbeat{250};
    std::size_t max_group = 4096;    // most events appended under one fdatasync
    std::size_t max_message_bytes = 1u << 20;  // frames larger than this are refused by ZeroMQ
};

struct BrokerStats {
    std::uint64_t appended = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t rejected = 0;
    std::uint64_t syncs = 0;
    std::uint64_t replay_requests = 0;
    std::uint64_t storage_failures = 0;  // failed writes or fsyncs of a group
    std::uint64_t unavailable = 0;       // publishes refused while storage was failing
};

class Broker {
public:
    // Opens and recovers the log, then binds the endpoints. Throws std::runtime_error with a
    // message naming what failed (a corrupt log, a port in use).
    explicit Broker(BrokerConfig config);
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    // Serves until `stop` becomes true (checked at least every 100 ms).
    void run(const std::atomic<bool>& stop);

    std::uint64_t head() const;
    const BrokerStats& stats() const;
    // The endpoints as bound (a ":*" port resolved to the real one).
    bus::Endpoints bound_endpoints() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace op::broker
