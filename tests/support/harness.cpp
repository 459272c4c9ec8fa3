#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "op/security/keys.hpp"

#ifndef OP_BIN_DIR
#error "OP_BIN_DIR must be defined (the directory holding the built broker and services)"
#endif
#ifndef OP_SOURCE_DIR
#error "OP_SOURCE_DIR must be defined (the repository root)"
#endif

namespace op::test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::runtime_error sys_error(const std::string& what, int err = errno) {
    return std::runtime_error(what + ": " + std::strerror(err));
}

// Shell-style status from a waitpid() status word.
int decode_wait_status(int raw) {
    if (WIFEXITED(raw)) {
        return WEXITSTATUS(raw);
    }
    if (WIFSIGNALED(raw)) {
        return 128 + WTERMSIG(raw);
    }
    return -1;
}

bool keep_test_dirs() {
    const char* keep = std::getenv("OP_KEEP_TEST_DIRS");
    return keep != nullptr && *keep != '\0' && std::string_view(keep) != "0";
}

std::string resolve_executable(const std::string& name) {
    if (name.find('/') != std::string::npos) {
        return name;
    }
    const char* path_env = std::getenv("PATH");
    std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
    std::istringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
        const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) {
            return candidate.string();
        }
    }
    throw std::runtime_error("Process: '" + name + "' not found in PATH");
}

std::vector<std::string> build_environment(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view entry(*e);
        const auto key = entry.substr(0, entry.find('='));
        const bool overridden = std::any_of(overrides.begin(), overrides.end(),
                                            [&](const auto& kv) { return kv.first == key; });
        if (!overridden) {
            env.emplace_back(entry);
        }
    }
    for (const auto& [key, value] : overrides) {
        env.push_back(key + "=" + value);
    }
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) {
            out += ' ';
        }
        out += p;
    }
    return out;
}

bool healthz_ok(int port) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(200ms);
    client.set_read_timeout(1s);
    const auto res = client.Get("/healthz");
    return res && res->status == 200;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TempDir

TempDir::TempDir(const std::string& prefix) {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw sys_error("TempDir: mkdtemp(" + pattern + ")");
    }
    path_ = pattern;
}

TempDir::~TempDir() { remove(); }

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

TempDir& TempDir::operator=(TempDir&& other) noexcept {
    if (this != &other) {
        remove();
        path_ = std::move(other.path_);
        other.path_.clear();
    }
    return *this;
}

void TempDir::remove() noexcept {
    if (path_.empty()) {
        return;
    }
    if (keep_test_dirs()) {
        std::cerr << "op::test: keeping " << path_.string() << " (OP_KEEP_TEST_DIRS)\n";
    } else {
        std::error_code ec;
        fs::remove_all(path_, ec);
        if (ec) {
            std::cerr << "op::test: could not remove " << path_.string() << ": " << ec.message()
                      << "\n";
        }
    }
    path_.clear();
}

// ---------------------------------------------------------------------------------------------
// Ports, polling, files

namespace {

// Binds 127.0.0.1:port (0: any) and returns the port bound, or -1 if it is taken.
int try_bind(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw sys_error("free_port: socket");
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    socklen_t len = sizeof addr;
    int bound = -1;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        bound = ntohs(addr.sin_port);
    }
    ::close(fd);
    return bound;
}

}  // namespace

int free_port() {
    // Below Linux's ephemeral range (32768-60999 by default): a port the kernel hands out for
    // bind(0) is also what it hands to the next outgoing connection, and the tests make many,
    // so such a port can be taken before the program under test binds it.
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<int> pick(20000, 32000);
    for (int attempt = 0; attempt < 200; ++attempt) {
        const int port = try_bind(pick(rng));
        if (port > 0) return port;
    }
    const int port = try_bind(0);
    if (port < 0) throw sys_error("free_port: bind on 127.0.0.1:0");
    return port;
}

namespace {

// Headers and a Content-Length body have all arrived (a server may keep the connection open).
bool complete_http_response(const std::string& text) {
    const auto body_at = text.find("\r\n\r\n");
    if (body_at == std::string::npos) return false;
    const auto headers = text.substr(0, body_at);
    const auto at = headers.find("Content-Length: ");
    if (at == std::string::npos) return false;
    const auto length = std::strtoull(headers.c_str() + at + 16, nullptr, 10);
    return text.size() >= body_at + 4 + length;
}

}  // namespace

std::string raw_http_exchange(int port, const std::string& request,
                              std::chrono::milliseconds timeout) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        std::size_t sent = 0;
        while (sent < request.size()) {
            const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent,
                                     MSG_NOSIGNAL);
            if (n <= 0) break;  // the server may refuse and close before reading it all
            sent += static_cast<std::size_t>(n);
        }
        const auto end = Clock::now() + timeout;
        char buf[4096];
        while (Clock::now() < end && !complete_http_response(answer)) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            answer.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return answer;
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

std::string free_tcp_endpoint() { return "tcp://127.0.0.1:" + std::to_string(free_port()); }

bool poll_until(std::chrono::milliseconds deadline, const std::function<bool()>& condition,
                std::chrono::milliseconds interval) {
    const auto end = Clock::now() + deadline;
    while (true) {
        if (condition()) {
            return true;
        }
        const auto now = Clock::now();
        if (now >= end) {
            return false;
        }
        std::this_thread::sleep_for(std::min<Clock::duration>(interval, end - now));
        if (Clock::now() >= end) {
            return condition();
        }
    }
}

std::string read_file(const fs::path& path, std::uintmax_t offset) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return {};
    }
    // Stream to EOF rather than trusting the size: /proc files report 0, and logs grow.
    if (offset > 0 && !in.seekg(static_cast<std::streamoff>(offset))) {
        return {};
    }
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string tail_file(const fs::path& path, std::size_t lines) {
    constexpr std::uintmax_t kMaxTailBytes = 256 * 1024;
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec || lines == 0) {
        return {};
    }
    const std::string text = read_file(path, size > kMaxTailBytes ? size - kMaxTailBytes : 0);
    // Walk back over `lines` line ends, ignoring a trailing newline.
    std::size_t pos = text.size();
    if (pos > 0 && text[pos - 1] == '\n') {
        --pos;
    }
    for (std::size_t seen = 0; pos > 0; --pos) {
        if (text[pos - 1] == '\n' && ++seen == lines) {
            break;
        }
    }
    return text.substr(pos);
}

bool file_contains(const fs::path& path, const std::string& needle, std::uintmax_t offset) {
    return read_file(path, offset).find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Process

Process::Process(std::vector<std::string> argv, fs::path log_path,
                 std::vector<std::pair<std::string, std::string>> env)
    : argv_(std::move(argv)), log_path_(std::move(log_path)) {
    if (argv_.empty()) {
        throw std::invalid_argument("Process: empty argv");
    }
    // Everything the child needs is prepared here: between fork and exec it may only make
    // async-signal-safe calls (the test process may have other threads).
    const std::string executable = resolve_executable(argv_.front());
    std::vector<std::string> args = argv_;
    std::vector<std::string> environment = build_environment(env);
    std::vector<char*> c_argv = c_strings(args);
    std::vector<char*> c_env = c_strings(environment);

    if (log_path_.has_parent_path()) {
        fs::create_directories(log_path_.parent_path());
    }
    const int log_fd =
        ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        throw sys_error("Process: open " + log_path_.string());
    }
    const std::string header = "--- " + utc_now() + " spawn: " + join(argv_) + "\n";
    (void)!::write(log_fd, header.data(), header.size());
    struct stat st {};
    if (::fstat(log_fd, &st) == 0) {
        log_offset_ = static_cast<std::uintmax_t>(st.st_size);
    }

    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int err_pipe[2];
    if (null_fd < 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
        const int err = errno;
        ::close(log_fd);
        if (null_fd >= 0) {
            ::close(null_fd);
        }
        throw sys_error("Process: /dev/null or pipe", err);
    }

    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child == 0) {
        // Die with the test: SIGKILL when the spawning thread exits. If the parent is already
        // gone (race with the prctl), give up now.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(127);
        }
        ::dup2(null_fd, STDIN_FILENO);
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
        // Ignored signals and the signal mask survive exec: give the program a clean slate.
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; ++sig) {
            ::sigaction(sig, &dfl, nullptr);
        }
        // Do not leak the test's other descriptors (listening sockets...) into the program.
        ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        ::execve(executable.c_str(), c_argv.data(), c_env.data());
        const int err = errno;
        (void)!::write(err_pipe[1], &err, sizeof err);
        ::_exit(127);
    }
    const int fork_err = errno;
    ::close(err_pipe[1]);
    ::close(log_fd);
    ::close(null_fd);
    if (child < 0) {
        ::close(err_pipe[0]);
        throw sys_error("Process: fork", fork_err);
    }
    pid_ = child;

    // EOF on the CLOEXEC pipe means exec succeeded; an int means it failed with that errno.
    int exec_err = 0;
    ssize_t n = 0;
    do {
        n = ::read(err_pipe[0], &exec_err, sizeof exec_err);
    } while (n < 0 && errno == EINTR);
    ::close(err_pipe[0]);
    if (n == static_cast<ssize_t>(sizeof exec_err)) {
        kill9();
        throw sys_error("Process: exec " + executable, exec_err);
    }
}

Process::~Process() {
    if (pid_ > 0) {
        try {
            terminate();
        } catch (...) {
            // A destructor must not throw; terminate() only throws on impossible errors.
        }
    }
}

Process::Process(Process&& other) noexcept
    : argv_(std::move(other.argv_)),
      log_path_(std::move(other.log_path_)),
      log_offset_(other.log_offset_),
      pid_(other.pid_),
      status_(other.status_) {
    other.reset();
}

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        if (pid_ > 0) {
            try {
                terminate();
            } catch (...) {
            }
        }
        argv_ = std::move(other.argv_);
        log_path_ = std::move(other.log_path_);
        log_offset_ = other.log_offset_;
        pid_ = other.pid_;
        status_ = other.status_;
        other.reset();
    }
    return *this;
}

void Process::reset() noexcept {
    pid_ = -1;
    status_.reset();
}

bool Process::running() {
    if (pid_ <= 0 || status_) {
        return false;
    }
    int raw = 0;
    pid_t r = 0;
    do {
        r = ::waitpid(pid_, &raw, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return true;
    }
    // r == pid_: reaped now. r < 0 (ECHILD): someone else reaped it; the status is lost.
    status_ = r == pid_ ? decode_wait_status(raw) : -1;
    return false;
}

void Process::signal(int signo) {
    if (running()) {
        ::kill(pid_, signo);
    }
}

std::optional<int> Process::wait_for(std::chrono::milliseconds timeout) {
    poll_until(timeout, [this] { return !running(); }, 5ms);
    return status_;
}

int Process::terminate(std::chrono::milliseconds grace) {
    if (!running()) {
        return status_.value_or(-1);
    }
    ::kill(pid_, SIGTERM);
    if (const auto status = wait_for(grace)) {
        return *status;
    }
    std::cerr << "op::test: pid " << pid_ << " (" << argv_.front() << ") ignored SIGTERM for "
              << grace.count() << " ms; sending SIGKILL\n";
    return kill9();
}

int Process::kill9() {
    if (!running()) {
        return status_.value_or(-1);
    }
    ::kill(pid_, SIGKILL);
    int raw = 0;
    pid_t r = 0;
    do {
        r = ::waitpid(pid_, &raw, 0);
    } while (r < 0 && errno == EINTR);
    status_ = r == pid_ ? decode_wait_status(raw) : -1;
    return *status_;
}

std::string describe_status(int status) {
    if (status < 0) {
        return "unknown status";
    }
    if (status > 128) {
        const int sig = status - 128;
        const char* name = ::strsignal(sig);
        return "killed by signal " + std::to_string(sig) + " (" + (name ? name : "?") + ")";
    }
    return "exited with status " + std::to_string(status);
}

// ---------------------------------------------------------------------------------------------
// System

const std::vector<std::string>& System::names() {
    static const std::vector<std::string> kNames = {"broker",     "payment",      "inventory",
                                                    "fulfilment", "notification", "order"};
    return kNames;
}

const std::vector<std::string>& System::services() {
    static const std::vector<std::string> kServices = {"payment", "inventory", "fulfilment",
                                                       "notification", "order"};
    return kServices;
}

System::System(SystemOptions options) : options_(std::move(options)) {
    temp_dir_.emplace("op-system");
    data_dir_ = temp_dir_->path();
    init();
}

System::System(fs::path data_dir, SystemOptions options)
    : options_(std::move(options)), data_dir_(std::move(data_dir)) {
    fs::create_directories(data_dir_);
    init();
}

System::~System() { stop_all(); }

void System::init() {
    fs::create_directories(data_dir_ / "logs");
    pick_ports();

    stock_path_ = data_dir_ / "initial-stock.json";
    if (options_.initial_stock_json.empty()) {
        fs::copy_file(fs::path(OP_SOURCE_DIR) / "data" / "inventory.json", stock_path_,
                      fs::copy_options::overwrite_existing);
    } else {
        std::ofstream out(stock_path_, std::ios::binary | std::ios::trunc);
        out << options_.initial_stock_json;
        if (!out) {
            throw std::runtime_error("System: cannot write " + stock_path_.string());
        }
    }
    if (options_.secure) {
        Process keys({(fs::path(OP_BIN_DIR) / "broker").string(), "keys", "--data-dir",
                      data_dir_.string(), "init"},
                     data_dir_ / "logs" / "keys.log");
        const auto status = keys.wait_for(options_.start_timeout);
        if (status != 0) {
            throw std::runtime_error("System: `broker keys init` failed:\n" +
                                     tail_file(keys.log_path()));
        }
    }
}

std::vector<std::string> with_args(std::vector<std::string> argv,
                                   const std::vector<std::string>& more) {
    argv.insert(argv.end(), more.begin(), more.end());
    return argv;
}

bus::Endpoints System::client(const std::string& identity) const {
    bus::Endpoints endpoints{publish_endpoint_, live_endpoint_, replay_endpoint_, {}};
    if (options_.secure) {
        const auto pair = security::read_key_pair(keys_dir(), identity);
        endpoints.curve = {security::read_public_key(keys_dir(), security::kBrokerIdentity),
                           pair.public_key, pair.secret_key};
    }
    return endpoints;
}

std::vector<std::string> System::security_args(const std::string& identity) const {
    if (!options_.secure) return {"--insecure"};
    return {"--keys-dir", keys_dir().string(), "--identity", identity};
}

std::vector<std::string> System::command(const std::string& name) const {
    const auto& all = names();
    if (std::find(all.begin(), all.end(), name) == all.end()) {
        throw std::invalid_argument("System: unknown program '" + name + "'");
    }
    const std::string binary = name == "broker" ? "broker" : name + "-service";
    std::vector<std::string> cmd = {
        (fs::path(OP_BIN_DIR) / binary).string(),
        "--data-dir", data_dir_.string(),
        "--publish", publish_endpoint_,
        "--live", live_endpoint_,
        "--replay", replay_endpoint_,
        "--log-level", options_.log_level,
    };
    if (name == "payment") {
        cmd.insert(cmd.end(), {"--limit", options_.payment_limit});
    } else if (name == "inventory") {
        cmd.insert(cmd.end(), {"--initial-stock", stock_path_.string()});
    } else if (name == "order") {
        cmd.insert(cmd.end(), {"--initial-stock", stock_path_.string(),
                               "--host", "127.0.0.1", "--port", std::to_string(order_port_),
                               "--decision-timeout-ms",
                               std::to_string(options_.decision_timeout_ms),
                               "--stall-after-ms", std::to_string(options_.stall_after_ms)});
    }
    if (!options_.secure) cmd.emplace_back("--insecure");
    if (auto it = options_.extra_args.find(name); it != options_.extra_args.end()) {
        cmd.insert(cmd.end(), it->second.begin(), it->second.end());
    }
    return cmd;
}

fs::path System::log_path(const std::string& name) const {
    return data_dir_ / "logs" / (name + ".log");
}

std::string System::log_tail(const std::string& name, std::size_t lines) const {
    return tail_file(log_path(name), lines);
}

std::string System::order_url() const { return "http://127.0.0.1:" + std::to_string(order_port_); }

httplib::Client System::http() const {
    httplib::Client client("127.0.0.1", order_port_);
    client.set_connection_timeout(1s);
    client.set_read_timeout(std::chrono::milliseconds(options_.decision_timeout_ms) + 5s);
    client.set_write_timeout(5s);
    return client;
}

Process& System::process(const std::string& name) {
    const auto it = processes_.find(name);
    if (it == processes_.end()) {
        throw std::out_of_range("System: '" + name + "' was never started");
    }
    return it->second;
}

void System::set_env(const std::string& name,
                     std::vector<std::pair<std::string, std::string>> env) {
    if (env.empty()) {
        env_.erase(name);
    } else {
        env_[name] = std::move(env);
    }
}

bool System::running(const std::string& name) {
    const auto it = processes_.find(name);
    return it != processes_.end() && it->second.running();
}

void System::spawn(const std::string& name) {
    if (running(name)) {
        throw std::logic_error("System: '" + name + "' is already running");
    }
    const std::string binary = command(name).front();
    if (::access(binary.c_str(), X_OK) != 0) {
        throw std::runtime_error("System: " + binary + " is missing or not executable (build it)");
    }
    std::vector<std::pair<std::string, std::string>> env;
    if (auto it = env_.find(name); it != env_.end()) env = it->second;
    Process process(command(name), log_path(name), env);
    processes_.insert_or_assign(name, std::move(process));
}

bool System::ready(const std::string& name) {
    Process& p = process(name);
    if (name == "broker") {
        return file_contains(p.log_path(), "broker ready", p.log_offset());
    }
    if (!file_contains(p.log_path(), "caught up", p.log_offset())) {
        return false;
    }
    return name != "order" || healthz_ok(order_port_);
}

void System::fail(const std::string& name, const std::string& what) {
    std::ostringstream msg;
    msg << "System: " << name << " " << what << " (log: " << log_path(name).string()
        << ")\n--- last 40 lines of " << name << ".log ---\n"
        << log_tail(name, 40);
    throw std::runtime_error(msg.str());
}

void System::wait_ready(const std::string& name) {
    bool died = false;
    const bool ok = poll_until(
        options_.start_timeout,
        [&] {
            if (ready(name)) {
                return true;
            }
            died = !process(name).running();
            return died;
        },
        20ms);
    if (died) {
        fail(name, "exited during startup: " +
                       describe_status(process(name).exit_status().value_or(-1)));
    }
    if (!ok) {
        fail(name, "not ready within " + std::to_string(options_.start_timeout.count()) + " ms");
    }
}

void System::pick_ports() {
    std::set<int> ports;
    while (ports.size() < 4) {
        ports.insert(free_port());
    }
    auto it = ports.begin();
    publish_endpoint_ = "tcp://127.0.0.1:" + std::to_string(*it++);
    live_endpoint_ = "tcp://127.0.0.1:" + std::to_string(*it++);
    replay_endpoint_ = "tcp://127.0.0.1:" + std::to_string(*it++);
    order_port_ = *it;
}

bool System::lost_its_port(const std::string& name) {
    auto& p = process(name);
    if (p.running()) return false;
    // What the broker and the order service say when a port of theirs is in use.
    return file_contains(p.log_path(), "Address already in use", p.log_offset()) ||
           file_contains(p.log_path(), "cannot listen on", p.log_offset());
}

void System::start(const std::string& name) {
    // A port found free can be bound by a test running in parallel before the broker binds
    // it (seen once in a clean-clone CI run). Before anything has connected to the broker,
    // its ports can still change: a first start that finds one in use picks new ones.
    bool first_start = name == "broker";
    for (const auto& n : names()) first_start = first_start && !started(n);
    for (int attempt = 1;; ++attempt) {
        spawn(name);
        try {
            wait_ready(name);
            return;
        } catch (const std::runtime_error&) {
            if (!first_start || attempt == 3 || !lost_its_port(name)) throw;
        }
        pick_ports();
    }
}

void System::start_all() {
    start("broker");
    for (const auto& name : services()) {
        spawn(name);
    }
    // The services start up concurrently; wait for all of them under one deadline.
    std::set<std::string> pending(services().begin(), services().end());
    std::string dead;
    int order_port_retries = 2;
    poll_until(
        options_.start_timeout,
        [&] {
            for (auto it = pending.begin(); it != pending.end();) {
                if (ready(*it)) {
                    it = pending.erase(it);
                } else if (!process(*it).running()) {
                    // The HTTP port, like the broker's (start), can be taken by a test running
                    // in parallel after it was found free; nothing depends on it yet.
                    if (*it == "order" && order_port_retries-- > 0 && lost_its_port(*it)) {
                        order_port_ = free_port();
                        spawn(*it);
                        ++it;
                        continue;
                    }
                    dead = *it;
                    return true;
                } else {
                    ++it;
                }
            }
            return pending.empty();
        },
        20ms);
    if (!dead.empty()) {
        fail(dead, "exited during startup: " +
                       describe_status(process(dead).exit_status().value_or(-1)));
    }
    if (!pending.empty()) {
        std::string others;
        for (auto it = std::next(pending.begin()); it != pending.end(); ++it) {
            others += (others.empty() ? "" : ", ") + *it;
        }
        fail(*pending.begin(), "not ready within " +
                                   std::to_string(options_.start_timeout.count()) + " ms" +
                                   (others.empty() ? "" : " (not ready either: " + others + ")"));
    }
}

int System::stop(const std::string& name) { return process(name).terminate(options_.stop_timeout); }

int System::kill(const std::string& name) { return process(name).kill9(); }

void System::stop_all() noexcept {
    try {
        // Services together (SIGTERM to all, then one shared deadline), the broker last so the
        // services can still flush to it while shutting down.
        for (const auto& group : {services(), std::vector<std::string>{"broker"}}) {
            std::vector<std::string> stopping;
            for (const auto& name : group) {
                if (running(name)) {
                    process(name).signal(SIGTERM);
                    stopping.push_back(name);
                }
            }
            const auto deadline = Clock::now() + options_.stop_timeout;
            for (const auto& name : stopping) {
                Process& p = process(name);
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::max<Clock::duration>(deadline - Clock::now(), Clock::duration::zero()));
                auto status = p.wait_for(left);
                if (!status) {
                    std::cerr << "op::test: " << name << " did not stop within "
                              << options_.stop_timeout.count() << " ms; sending SIGKILL\n";
                    status = p.kill9();
                }
                if (*status != 0) {
                    std::cerr << "op::test: " << name << " " << describe_status(*status)
                              << " on shutdown; last lines of " << log_path(name).string()
                              << ":\n"
                              << log_tail(name, 20);
                }
            }
        }
    } catch (const std::exception& e) {
        std::cerr << "op::test: error while stopping the system: " << e.what() << "\n";
    }
}

}  // namespace op::test
