// Test harness for integration tests: temporary directories, free loopback ports, polling with
// a deadline, RAII child processes, and `System`, which boots the real broker and the five
// services as processes and shuts them down (services first, broker last) in its destructor.
// Nothing here is thread-safe: drive a Process or a System from the thread that created it.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "op/bus/endpoints.hpp"

namespace op::test {

using namespace std::chrono_literals;

// A fresh directory under /tmp, removed recursively on destruction. Set OP_KEEP_TEST_DIRS=1 in
// the environment to keep it for a post-mortem (its path is then printed to stderr).
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "op-test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    TempDir(TempDir&& other) noexcept;
    TempDir& operator=(TempDir&& other) noexcept;

    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
    void remove() noexcept;
    std::filesystem::path path_;
};

// Sends `request` as raw bytes to 127.0.0.1:port and returns what the server writes until the
// first response is complete (headers and a Content-Length body), the server closes, or
// `timeout` passes ("" if it cannot connect). For requests
// an HTTP client library would not send as written (bad framing, hand-made chunks).
std::string raw_http_exchange(int port, const std::string& request,
                              std::chrono::milliseconds timeout = 5s);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it back, close).
int free_port();
// "tcp://127.0.0.1:<free_port()>".
std::string free_tcp_endpoint();

// Calls `condition` every `interval` until it returns true (-> true) or `deadline` has passed
// (-> false, after one last try). The condition is always called at least once.
bool poll_until(std::chrono::milliseconds deadline, const std::function<bool()>& condition,
                std::chrono::milliseconds interval = 10ms);

// An unsigned integer from the environment (a test's bounds, a seed to replay), or `fallback`
// when the variable is unset or empty.
std::uint64_t env_or(const char* name, std::uint64_t fallback);

// `argv` with `more` appended, e.g. with_args({tap, "--from-start"}, system.security_args(...)).
std::vector<std::string> with_args(std::vector<std::string> argv,
                                   const std::vector<std::string>& more);

// Reads a whole file, or the part from byte `offset` on. Missing file -> "".
std::string read_file(const std::filesystem::path& path, std::uintmax_t offset = 0);
// The last `lines` lines of a file (missing file -> "").
std::string tail_file(const std::filesystem::path& path, std::size_t lines = 40);
// Whether the file contains `needle` at or after byte `offset`.
bool file_contains(const std::filesystem::path& path, const std::string& needle,
                   std::uintmax_t offset = 0);

// A child process (fork + execve). stdin is /dev/null; stdout and stderr are appended to
// `log_path` (a header line marks each spawn, so a restarted program's history stays in one
// file). The child gets SIGKILL if the thread that spawned it dies (PR_SET_PDEATHSIG), so a
// crashed or killed test leaves no orphans. The destructor terminates a still-running child.
//
// Exit statuses are reported shell-style: the exit code if the child exited, 128 + signal
// number if a signal killed it.
class Process {
public:
    // argv[0] is a path, or a bare name looked up in PATH. `env` entries are added to (or
    // override) the inherited environment. Throws std::runtime_error if the spawn fails
    // (including exec failure, e.g. a missing binary).
    Process(std::vector<std::string> argv, std::filesystem::path log_path,
            std::vector<std::pair<std::string, std::string>> env = {});
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;

    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }
    [[nodiscard]] const std::filesystem::path& log_path() const { return log_path_; }
    // Size of the log file right after this spawn's header: what the child wrote starts here.
    [[nodiscard]] std::uintmax_t log_offset() const { return log_offset_; }

    // True while the child has not exited (reaps it with WNOHANG if it has).
    bool running();
    // The exit status once the child has been reaped.
    [[nodiscard]] std::optional<int> exit_status() const { return status_; }
    // Sends `signo` if the child is still running; no-op otherwise.
    void signal(int signo);
    // Waits up to `timeout` for the child to exit; its status, or nullopt if still running.
    std::optional<int> wait_for(std::chrono::milliseconds timeout);
    // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status (0 = clean shutdown).
    int terminate(std::chrono::milliseconds grace = 10s);
    // SIGKILL and reap. Returns the exit status (137 unless it had already exited).
    int kill9();

private:
    void reset() noexcept;
    std::vector<std::string> argv_;
    std::filesystem::path log_path_;
    std::uintmax_t log_offset_ = 0;
    pid_t pid_ = -1;
    std::optional<int> status_;
};

// "exited with status 3" / "killed by signal 9 (Killed)" for a shell-style status.
std::string describe_status(int status);

struct SystemOptions {
    // Written into the data dir and passed to the inventory service as --initial-stock.
    // Empty: a copy of OP_SOURCE_DIR/data/inventory.json.
    std::string initial_stock_json;
    std::string payment_limit = "5000";
    int decision_timeout_ms = 5000;
    int stall_after_ms = 30000;
    // Extra flags per program, appended to its command line, e.g.
    // {{"broker", {"--segment-size", "16KiB"}}, {"order", {"--max-sync-waits", "2"}}}.
    std::map<std::string, std::vector<std::string>> extra_args;
    std::string log_level = "info";
    // CurveZMQ, as `make run` has it: `broker keys init` makes the keys in DATA_DIR/keys before
    // anything starts. false: every program gets --insecure.
    bool secure = true;
    // Bound for each readiness wait in start() / start_all().
    std::chrono::milliseconds start_timeout = 20s;
    // Bound for SIGTERM -> exit in stop() and in the destructor, before SIGKILL.
    std::chrono::milliseconds stop_timeout = 10s;
};

// The whole pipeline as real processes (binaries from OP_BIN_DIR) on free loopback ports, with
// a data dir (a TempDir unless one is given) holding each program's state and its log file
// logs/<name>.log. Names: "broker", "payment", "inventory", "fulfilment", "notification",
// "order". Readiness: the broker logs "broker ready"; a service logs "caught up"; the order
// service also answers GET /healthz with 200. Only log lines written since the latest spawn
// count, so restarts are waited for correctly.
class System {
public:
    explicit System(SystemOptions options = {});
    // Uses (and keeps) `data_dir`, e.g. to restart a system on the state a previous one left.
    explicit System(std::filesystem::path data_dir, SystemOptions options = {});
    ~System();
    System(const System&) = delete;
    System& operator=(const System&) = delete;

    // All names, broker first; the five services.
    static const std::vector<std::string>& names();
    static const std::vector<std::string>& services();

    // Broker first (waits for it), then the five services, then waits until all are ready.
    // Throws std::runtime_error (with the relevant log's tail) on timeout or early exit.
    void start_all();
    // Spawns one program and waits until it is ready; throws like start_all().
    void start(const std::string& name);
    // SIGTERM, wait (then SIGKILL); returns the exit status: 0 means a clean shutdown.
    int stop(const std::string& name);
    // SIGKILL (a crash); returns the exit status.
    int kill(const std::string& name);
    bool running(const std::string& name);
    // Whether `name` was ever spawned (running or not).
    bool started(const std::string& name) const { return processes_.contains(name); }
    // Extra environment for every later spawn of `name` (e.g. OP_FAILPOINTS); {} clears it.
    void set_env(const std::string& name, std::vector<std::pair<std::string, std::string>> env);
    // The process, e.g. for pid() or signal(); throws std::out_of_range if never started.
    Process& process(const std::string& name);

    // A fresh client for the order service: 1 s connection timeout, read timeout long enough
    // for a decision (decision_timeout_ms + 5 s).
    [[nodiscard]] httplib::Client http() const;
    [[nodiscard]] int order_port() const { return order_port_; }
    [[nodiscard]] std::string order_url() const;  // "http://127.0.0.1:<port>"
    [[nodiscard]] const std::string& publish_endpoint() const { return publish_endpoint_; }
    [[nodiscard]] const std::string& live_endpoint() const { return live_endpoint_; }
    [[nodiscard]] const std::string& replay_endpoint() const { return replay_endpoint_; }
    [[nodiscard]] const std::filesystem::path& data_dir() const { return data_dir_; }
    [[nodiscard]] const std::filesystem::path& initial_stock_path() const { return stock_path_; }
    [[nodiscard]] const SystemOptions& options() const { return options_; }
    [[nodiscard]] std::filesystem::path log_path(const std::string& name) const;
    [[nodiscard]] std::string log_tail(const std::string& name, std::size_t lines = 40) const;

    // The broker's endpoints with the CurveZMQ keys of `identity` (from DATA_DIR/keys), for a
    // bus client inside the test; no keys when the system runs insecure.
    [[nodiscard]] bus::Endpoints client(const std::string& identity) const;
    // The flags that make a tool (tap, replay, broker export) connect as `identity`:
    // {"--keys-dir", DATA_DIR/keys, "--identity", identity}, or {"--insecure"}.
    [[nodiscard]] std::vector<std::string> security_args(const std::string& identity) const;
    [[nodiscard]] std::filesystem::path keys_dir() const { return data_dir_ / "keys"; }

    // The command line start(name) uses (binary path first).
    [[nodiscard]] std::vector<std::string> command(const std::string& name) const;

private:
    void init();
    void pick_ports();  // four free loopback ports: the broker's three endpoints and HTTP
    // Exited at its start because a port picked free was taken meanwhile (by a parallel test).
    bool lost_its_port(const std::string& name);
    void spawn(const std::string& name);
    void wait_ready(const std::string& name);
    bool ready(const std::string& name);
    void stop_all() noexcept;
    [[noreturn]] void fail(const std::string& name, const std::string& what);

    SystemOptions options_;
    std::optional<TempDir> temp_dir_;
    std::filesystem::path data_dir_;
    std::filesystem::path stock_path_;
    int order_port_ = 0;
    std::string publish_endpoint_;
    std::string live_endpoint_;
    std::string replay_endpoint_;
    std::map<std::string, Process> processes_;
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> env_;
};

}  // namespace op::test
