// The system under load: either one bench starts itself through the test harness (the real
// broker and five services on free loopback ports, in a temporary data dir, with stock no run
// can exhaust), or one already running (`make run`) that bench is pointed at with --url.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "op/bus/endpoints.hpp"
#include "proc_stats.hpp"

namespace op::test {
class System;
}

namespace op::bench {

struct TargetOptions {
    std::string url;                     // empty: start our own system
    bus::Endpoints endpoints;            // of an existing system (with --url)
    std::int64_t stock = 1'000'000'000;  // per item, for a self-started system
    // The order service's bound on waiting place-order requests, for a self-started system:
    // above the load, so the ingress limit is not what is measured (0: the service's own).
    int max_sync_waits = 0;
};

class Target {
public:
    explicit Target(const TargetOptions& options);
    ~Target();
    Target(const Target&) = delete;
    Target& operator=(const Target&) = delete;

    const std::string& host() const { return host_; }
    int port() const { return port_; }
    const bus::Endpoints& endpoints() const { return endpoints_; }
    bool self_started() const { return system_ != nullptr; }
    std::string describe() const;
    // The system's processes (self-started only) and bench itself.
    std::vector<WatchedProcess> processes() const;
    // Available stock of `item`: from the inventory service's database when we started the
    // system, else from GET /inventory (the order service's view of it).
    std::optional<std::int64_t> stock(const std::string& item) const;

private:
    std::unique_ptr<test::System> system_;
    std::string host_ = "127.0.0.1";
    int port_ = 0;
    bus::Endpoints endpoints_;
};

}  // namespace op::bench
