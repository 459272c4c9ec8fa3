// Ctrl-C (or SIGTERM) ends bench early but cleanly: loads stop at their next request, the
// current step throws, and the destructors stop every process bench started (ours and the
// original's) and remove their temporary directories. Without this a Ctrl-C would leave the
// original's Flask processes running and the data dirs behind.
#pragma once

namespace op::bench {

// Installs the handlers (main, once).
void watch_stop_signals();
// Whether a stop was asked for; cheap, for hot loops.
bool stop_requested();
// Throws std::runtime_error("interrupted") if a stop was asked for: between steps.
void throw_if_stopped();

}  // namespace op::bench
