// `broker export`: writes the log (or a seq range) as NDJSON, one event per line exactly as
// appended, by reading it from a running broker's replay endpoint.
#pragma once

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>

#include "op/bus/endpoints.hpp"

namespace op::broker {

struct ExportOptions {
    bus::Endpoints endpoints;
    std::uint64_t from = 1;
    std::uint64_t to = 0;  // 0: up to the head as it is when the export catches up
    bool progress = false;  // a progress line on stderr
};

// Returns the number of events written; throws std::runtime_error if the broker does not
// answer within `timeout_ms`.
std::uint64_t export_log(const ExportOptions& options, std::ostream& out,
                         const std::atomic<bool>& stop, int timeout_ms = 10000);

}  // namespace op::broker
