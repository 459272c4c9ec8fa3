// Failpoints: named places on the write paths where a test can crash the process or make an
// I/O call fail, the way SQLite and etcd test themselves. Off unless the environment variable
// OP_FAILPOINTS names them, and then cheap: one lookup in a small map per hit.
//
//   OP_FAILPOINTS="log.after_write=crash@3,log.fsync=eio@2+,log.write=enospc@while:/tmp/full"
//
// Each entry is name=action[@when]:
//   action  crash   SIGKILL this process at the hit (no cleanup, like a power cut for the app)
//           eio     make the I/O call at this point fail with EIO
//           enospc  ... with ENOSPC
//   when    N       only the Nth hit (1-based; default 1)
//           N+      every hit from the Nth on
//           while:PATH  every hit while the file PATH exists (a test turns a fault on and off)
// Malformed entries are reported on stderr once and ignored. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace op::failpoint {

// Every failpoint in the code, so a test can walk them all and --help can list them.
inline constexpr std::string_view kBeforeLogWrite = "log.before_write";
inline constexpr std::string_view kLogWrite = "log.write";          // error injection (errno)
inline constexpr std::string_view kMidGroupWrite = "log.mid_group";  // half the group written
inline constexpr std::string_view kAfterLogWrite = "log.after_write";  // written, not synced
inline constexpr std::string_view kLogFsync = "log.fsync";          // error injection (errno)
inline constexpr std::string_view kSegmentRoll = "log.segment_roll";  // new file, name unsynced
inline constexpr std::string_view kAfterFsync = "broker.after_fsync";  // durable, not acked
inline constexpr std::string_view kAfterPublish = "service.after_publish";  // acked, no commit
inline constexpr std::string_view kAfterCommit = "service.after_commit";  // committed
// Error injection: the broker's ZAP handler fails to start, or fails while answering.
inline constexpr std::string_view kZapStart = "broker.zap_start";
inline constexpr std::string_view kZapRequest = "broker.zap_request";

// Counts a hit of `name`. If a crash is armed for this hit, the process dies here. Returns the
// errno to inject (EIO, ENOSPC) if an error is armed for this hit, else 0.
int hit(std::string_view name);

// Replaces the armed points with `spec` (same syntax as OP_FAILPOINTS; "" disarms all), for
// unit tests that drive a failpoint in-process. Call it while no other thread hits points.
void configure(std::string_view spec);

// True when OP_FAILPOINTS named at least one point (for a startup log line).
bool any_armed();
// The armed entries as given, for that log line.
std::string describe_armed();

}  // namespace op::failpoint
