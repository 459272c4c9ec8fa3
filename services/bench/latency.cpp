#include "latency.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace op::bench {

void LatencySamples::merge(const LatencySamples& other) {
    ns_.insert(ns_.end(), other.ns_.begin(), other.ns_.end());
}

Percentiles LatencySamples::summarize() {
    Percentiles p;
    p.count = ns_.size();
    if (ns_.empty()) return p;
    std::sort(ns_.begin(), ns_.end());
    // Nearest-rank: the smallest sample with at least q of all samples at or below it, so a
    // p99.9 over fewer than 1000 samples is the max rather than an interpolated guess.
    auto rank = [&](double q) {
        const auto n = static_cast<double>(ns_.size());
        auto i = static_cast<std::size_t>(std::ceil(q * n));
        i = std::clamp<std::size_t>(i, 1, ns_.size());
        return static_cast<double>(ns_[i - 1]) / 1000.0;
    };
    const long double sum = std::accumulate(ns_.begin(), ns_.end(), 0.0L);
    p.mean_us = static_cast<double>(sum / static_cast<long double>(ns_.size())) / 1000.0;
    p.p50_us = rank(0.50);
    p.p90_us = rank(0.90);
    p.p99_us = rank(0.99);
    p.p999_us = rank(0.999);
    p.max_us = static_cast<double>(ns_.back()) / 1000.0;
    return p;
}

nlohmann::json to_json(const Percentiles& p) {
    return {{"count", p.count},   {"mean_us", p.mean_us}, {"p50_us", p.p50_us},
            {"p90_us", p.p90_us}, {"p99_us", p.p99_us},   {"p999_us", p.p999_us},
            {"max_us", p.max_us}};
}

double median(std::vector<double> values) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace op::bench
