// The broker: owns the durable event log and serves the three endpoints of protocol.hpp.
// Publishes are validated, de-duplicated by event id, numbered, appended in groups with one
// fdatasync per group, and only then acknowledged and fanned out live. Single-threaded: run()
// owns every socket and the log (the ZAP handler that authenticates connections has a thread of
// its own).
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
    // Event ids held whole in memory before they are written out to the id index's runs
    // (op/broker/id_index.hpp).
    std::size_t id_index_recent = 1u << 18;
    // CurveZMQ on every endpoint, clients let in by authorized_keys and publishes authorised
    // by the policy (op/security/policy.hpp). Off: NULL security, anyone may do anything.
    bool secure = true;
    std::filesystem::path keys_dir;  // empty: data_dir/keys
    // Full segments older than this, once every consumer that reports checkpoints has passed
    // them, are deleted. 0: keep the whole log.
    std::chrono::seconds retention_age{0};
    // How often authorized_keys is checked for changes (a removed key is cut off).
    std::chrono::milliseconds keys_check{500};
};

struct BrokerStats {
    std::uint64_t appended = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t rejected = 0;
    std::uint64_t syncs = 0;
    std::uint64_t replay_requests = 0;
    std::uint64_t storage_failures = 0;  // failed writes or fsyncs of a group
    std::uint64_t unavailable = 0;       // publishes refused while storage was failing
    std::uint64_t unauthorized = 0;  // publishes refused by the policy (counted in rejected too)
    std::uint64_t keys_reloads = 0;  // authorized_keys changes taken
    std::uint64_t segments_deleted = 0;  // by retention
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
