// Latency samples and their percentiles. Exact: every sample is kept and sorted once, which at
// the rates bench drives (a few hundred thousand samples a run) costs a few MB and no accuracy.
// Not thread-safe: each load thread fills its own and they are merged afterwards.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace op::bench {

using Nanos = std::chrono::nanoseconds;

struct Percentiles {
    std::uint64_t count = 0;
    double mean_us = 0;
    double p50_us = 0;
    double p90_us = 0;
    double p99_us = 0;
    double p999_us = 0;
    double max_us = 0;
};

class LatencySamples {
public:
    void add(Nanos d) { ns_.push_back(d.count() < 0 ? 0 : d.count()); }
    void merge(const LatencySamples& other);
    std::size_t size() const { return ns_.size(); }
    void reserve(std::size_t n) { ns_.reserve(n); }
    // Sorts in place (once) and reads the percentiles off the sorted samples.
    Percentiles summarize();

private:
    std::vector<std::int64_t> ns_;
};

nlohmann::json to_json(const Percentiles& p);

// The median of a few runs' figures (the targets are medians of 3 runs).
double median(std::vector<double> values);

}  // namespace op::bench
