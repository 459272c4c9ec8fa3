#include "stop.hpp"

#include <atomic>
#include <stdexcept>

#include "op/runtime/process.hpp"

namespace op::bench {
namespace {

const std::atomic<bool>* g_stop = nullptr;

}  // namespace

void watch_stop_signals() { g_stop = &runtime::install_stop_signals(); }

bool stop_requested() { return g_stop != nullptr && g_stop->load(std::memory_order_relaxed); }

void throw_if_stopped() {
    if (stop_requested()) throw std::runtime_error("interrupted; stopped what it had started");
}

}  // namespace op::bench
