// The standard suite (`make bench`): the floor, the broker alone at 1/8/64 publishers, our
// system at idle (1 client) and at 64 clients, a sustained throughput run, and the original
// side by side at 1/8/32 connections; medians of `runs` runs; then one table of each figure
// against the target.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

#include "config.hpp"

namespace op::bench {

// Prints as it goes to `out`; returns every figure and run as JSON.
nlohmann::json run_suite(const BenchConfig& config, std::ostream& out);

}  // namespace op::bench
