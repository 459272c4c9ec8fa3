#include "original.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace op::bench {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool port_free(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

// The original needs BASE..BASE+4.
int five_free_ports() {
    for (int attempt = 0; attempt < 100; ++attempt) {
        const int base = test::free_port();
        if (base + 4 > 65535) continue;
        bool ok = true;
        for (int p = 1; p <= 4 && ok; ++p) ok = port_free(base + p);
        if (ok) return base;
    }
    throw std::runtime_error("original: found no five consecutive free ports on 127.0.0.1");
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

}  // namespace

fs::path default_seed_dir() { return fs::path(OP_SOURCE_DIR) / ".." / "shared" / "seed_flask"; }

OriginalSystem::OriginalSystem(const fs::path& seed_dir, std::int64_t stock)
    : dir_("op-bench-original"), stock_(stock) {
    const fs::path start = seed_dir / "start.sh";
    if (!fs::exists(start)) {
        throw std::runtime_error("original: " + start.string() +
                                 " not found (give its directory with --original-dir)");
    }
    // Debian's python3 has Flask and requests (scripts/install-deps.sh --bench); a python3
    // earlier in PATH (pyenv, a virtualenv) may not.
    const char* path = std::getenv("PATH");
    const std::string debian_path = std::string("/usr/bin:/bin:") + (path ? path : "");
    {
        test::Process check({"/usr/bin/python3", "-c", "import flask, requests"},
                            dir_.path() / "python-check.log", {{"PATH", debian_path}});
        if (check.wait_for(30s) != std::optional<int>(0)) {
            throw std::runtime_error(
                "original: Debian's python3 cannot import flask and requests; install them "
                "with `scripts/install-deps.sh --bench` (python3-flask, python3-requests)");
        }
    }
    base_port_ = five_free_ports();
    const fs::path log = dir_.path() / "start.log";
    test::Process starter({"bash", start.string(), (dir_.path() / "data").string(),
                           std::to_string(base_port_), std::to_string(stock)},
                          log, {{"PATH", debian_path}});
    const auto status = starter.wait_for(30s);
    // start.sh prints the five PIDs on its last line.
    std::istringstream lines(test::read_file(log, starter.log_offset()));
    std::string last;
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty()) last = line;
    }
    std::istringstream fields(last);
    for (pid_t pid = 0; fields >> pid;) pids_.push_back(pid);
    if (status != std::optional<int>(0) || pids_.size() != 5) {
        stop();
        throw std::runtime_error("original: start.sh failed (" + test::tail_file(log, 10) + ")");
    }
    // start.sh waits for the ports; a service that died at import is seen here.
    for (pid_t pid : pids_) {
        if (!alive(pid)) {
            stop();
            throw std::runtime_error("original: a Flask service exited at start; see " +
                                     (dir_.path() / "data").string() + "/log_*.txt");
        }
    }
}

OriginalSystem::~OriginalSystem() { stop(); }

void OriginalSystem::stop() noexcept {
    for (pid_t pid : pids_) ::kill(pid, SIGTERM);
    // Not our children (start.sh started them), so poll rather than wait.
    test::poll_until(5s, [&] {
        for (pid_t pid : pids_) {
            if (alive(pid)) return false;
        }
        return true;
    });
    for (pid_t pid : pids_) {
        if (alive(pid)) ::kill(pid, SIGKILL);
    }
    pids_.clear();
}

std::vector<WatchedProcess> OriginalSystem::processes() const {
    static const char* kNames[] = {"flask payment", "flask inventory", "flask fulfilment",
                                   "flask notification", "flask order"};
    std::vector<WatchedProcess> out;
    for (std::size_t i = 0; i < pids_.size() && i < 5; ++i) out.push_back({kNames[i], pids_[i]});
    out.push_back({"bench", ::getpid()});
    return out;
}

OriginalAudit OriginalSystem::audit(std::uint64_t successes) const {
    OriginalAudit a;
    const auto orders = nlohmann::json::parse(test::read_file(dir_.path() / "data" / "orders.json"),
                                              nullptr, false);
    a.orders_file_valid = orders.is_array();
    if (a.orders_file_valid) a.orders_recorded = orders.size();
    const auto inventory = nlohmann::json::parse(
        test::read_file(dir_.path() / "data" / "inventory.json"), nullptr, false);
    if (inventory.is_object() && inventory.contains("phone") &&
        inventory["phone"].is_number_integer()) {
        a.stock_taken = stock_ - inventory["phone"].get<std::int64_t>();
    }
    a.lost = successes > a.orders_recorded ? successes - a.orders_recorded : 0;
    a.summary = fmt::format(
        "orders.json {}{}; {} success answers, {} recorded, {} lost; stock taken {}",
        a.orders_file_valid ? "valid" : "CORRUPT",
        a.orders_file_valid ? "" : " (every order in it lost)", successes, a.orders_recorded,
        a.lost,
        a.stock_taken ? std::to_string(*a.stock_taken) : "unknown (inventory.json corrupt)");
    return a;
}

nlohmann::json to_json(const OriginalAudit& a) {
    return {{"orders_file_valid", a.orders_file_valid},
            {"orders_recorded", a.orders_recorded},
            {"stock_taken", a.stock_taken ? nlohmann::json(*a.stock_taken) : nlohmann::json()},
            {"lost", a.lost},
            {"summary", a.summary}};
}

}  // namespace op::bench
