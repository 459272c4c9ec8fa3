// bench's configuration: one plain struct, filled from the command line in main.cpp only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "op/bus/endpoints.hpp"

namespace op::bench {

struct BenchConfig {
    // The system under load: empty url -> bench starts its own.
    std::string url;
    bus::Endpoints endpoints;

    // One load run (the default mode, and what --floor compares with the bound).
    double duration_s = 5;
    int concurrency = 1;
    double rate = 0;  // open loop when > 0
    std::string path = "/place-order";
    std::string item = "phone";
    std::string amount = "1000";
    double check_timeout_s = 60;
    int runs = 1;

    // Modes; none given: one load run.
    bool floor = false;
    bool broker = false;
    bool compare_original = false;
    bool suite = false;
    std::vector<std::uint64_t> growth;  // log sizes for the growth mode; empty: not run

    double floor_probe_s = 2;
    std::string floor_dir;  // empty: a temporary dir beside the self-started system's
    std::vector<int> publishers = {1, 8, 64};
    double broker_duration_s = 3;
    int window = 32;  // --broker: publishes each publisher keeps unacknowledged
    // The suite's broker-alone throughput (the most publishers): the windows swept. A capacity
    // is read where more in flight no longer buys more acks, as the sustained run is.
    std::vector<int> suite_windows = {32, 128, 256};
    // The suite's sustained run: enough connections to keep every core busy, so the figure is
    // what the system sustains, not what a few clients each waiting for an answer can send.
    int sustained_connections = 1024;
    std::vector<int> compare_connections = {1, 8, 32};
    std::string original_dir;  // empty: ../shared/seed_flask
    double compare_duration_s = 4;

    // Self-started system: the order service's waiting bound (0: its own, unless bench drives
    // more connections than that).
    int max_sync_waits = 0;

    bool json = false;
};

}  // namespace op::bench
