#include "op/runtime/process.hpp"

#include "op/runtime/failpoint.hpp"
#include "op/security/keys.hpp"
#include "buffered_stderr_sink.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace op::runtime {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "a signal handler may only touch this");

void on_stop_signal(int) { g_stop.store(true); }

}  // namespace

const std::atomic<bool>& install_stop_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR so loops notice at once
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    return g_stop;
}

void add_endpoint_flags(CLI::App& app, bus::Endpoints& endpoints, bool binding) {
    const std::string verb = binding ? "bind" : "connect to";
    app.add_option("--publish", endpoints.publish,
                   "ZeroMQ endpoint to " + verb + " for publishing events (acked once durable)")
        ->capture_default_str();
    app.add_option("--live", endpoints.live,
                   "ZeroMQ endpoint to " + verb + " for the live feed of appended events")
        ->capture_default_str();
    app.add_option("--replay", endpoints.replay,
                   "ZeroMQ endpoint to " + verb + " for replaying the log from a seq")
        ->capture_default_str();
}

void add_security_flags(CLI::App& app, SecurityFlags& flags, const std::string& identity,
                        const std::string& default_keys_dir) {
    app.add_option("--keys-dir", flags.keys_dir,
                   "directory of the CurveZMQ keys (`broker keys init` makes them; default " +
                       default_keys_dir + ")");
    app.add_flag("--insecure", flags.insecure,
                 "turn CurveZMQ off: plain connections with no keys, no identities and no publish "
                 "policy, so anyone who reaches the broker's ports may publish any event. For "
                 "local experiments only; the broker and every client must agree");
    if (!identity.empty()) {
        flags.identity = identity;
        app.add_option("--identity", flags.identity,
                       "whose key to use: KEYS_DIR/<identity>.secret; the broker's policy says "
                       "what it may publish and read")
            ->capture_default_str();
    }
}

bus::ClientCurveKeys load_client_keys(const SecurityFlags& flags,
                                      const std::filesystem::path& default_keys_dir) {
    if (flags.insecure) return {};
    const auto dir = flags.keys_dir.empty() ? default_keys_dir : flags.keys_dir;
    const auto pair = security::read_key_pair(dir, flags.identity);
    return {security::read_public_key(dir, security::kBrokerIdentity), pair.public_key,
            pair.secret_key};
}

void add_log_level_flag(CLI::App& app, std::string& level) {
    app.add_option("--log-level", level,
                   "trace, debug, info, warn, error, critical or off (SPDLOG_LEVEL in the environment "
                   "overrides it)")
        ->capture_default_str()
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
}

void setup_logging(const std::string& program, const std::string& level) {
    // Colours for a person at a terminal; a file or a pipe (make run, the tests, a
    // supervisor) gets the lines gathered into few writes.
    std::shared_ptr<spdlog::logger> logger =
        ::isatty(STDERR_FILENO) == 1
            ? spdlog::stderr_color_mt(program)
            : std::make_shared<spdlog::logger>(program, std::make_shared<BufferedStderrSink>());
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
    spdlog::set_level(spdlog::level::from_str(level));
    spdlog::cfg::load_env_levels();
    if (failpoint::any_armed()) {
        spdlog::warn("failpoints armed (OP_FAILPOINTS): {}; this process will fail on purpose",
                     failpoint::describe_armed());
    }
}

std::size_t raise_open_file_limit(std::size_t wanted) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    const auto want = static_cast<rlim_t>(wanted);
    if (limit.rlim_cur < want && limit.rlim_cur != RLIM_INFINITY) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? want : std::min(want, limit.rlim_max);
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    return limit.rlim_cur == RLIM_INFINITY ? wanted : static_cast<std::size_t>(limit.rlim_cur);
}

}  // namespace op::runtime
