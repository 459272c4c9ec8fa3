#include "op/runtime/failpoint.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

namespace op::failpoint {
namespace {

enum class Action { Crash, Eio, Enospc };

struct Armed {
    Action action = Action::Crash;
    std::uint64_t nth = 1;
    bool from_nth_on = false;
    std::string while_exists;  // non-empty: active while this file exists
    std::uint64_t hits = 0;
};

struct Registry {
    std::mutex mu;
    std::map<std::string, Armed, std::less<>> points;
    std::string spec;

    Registry() {
        const char* env = std::getenv("OP_FAILPOINTS");
        if (env != nullptr) load(env);
    }

    void load(std::string_view text) {
        points.clear();
        spec = std::string(text);
        std::string_view rest = spec;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            const std::string_view entry = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            if (!entry.empty() && !parse(entry)) {
                std::fprintf(stderr,
                             "OP_FAILPOINTS: ignoring \"%.*s\" (expected name=crash|eio|enospc"
                             "[@N|@N+|@while:PATH])\n",
                             static_cast<int>(entry.size()), entry.data());
            }
        }
    }

    bool parse(std::string_view entry) {
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos || eq == 0) return false;
        const std::string name(entry.substr(0, eq));
        std::string_view action = entry.substr(eq + 1);
        std::string_view when;
        if (const auto at = action.find('@'); at != std::string_view::npos) {
            when = action.substr(at + 1);
            action = action.substr(0, at);
        }
        Armed a;
        if (action == "crash") {
            a.action = Action::Crash;
        } else if (action == "eio") {
            a.action = Action::Eio;
        } else if (action == "enospc") {
            a.action = Action::Enospc;
        } else {
            return false;
        }
        if (when.starts_with("while:")) {
            a.while_exists = std::string(when.substr(6));
            if (a.while_exists.empty()) return false;
        } else if (!when.empty()) {
            if (when.back() == '+') {
                a.from_nth_on = true;
                when.remove_suffix(1);
            }
            auto [ptr, ec] = std::from_chars(when.data(), when.data() + when.size(), a.nth);
            if (ec != std::errc{} || ptr != when.data() + when.size() || a.nth == 0) return false;
        }
        points[name] = std::move(a);
        return true;
    }
};

Registry& registry() {
    static Registry r;
    return r;
}

}  // namespace

int hit(std::string_view name) {
    Registry& r = registry();
    // Written only at start-up (or by configure() in a single-threaded test): no lock needed.
    if (r.points.empty()) return 0;
    Action action;
    {
        std::lock_guard lock(r.mu);
        auto it = r.points.find(name);
        if (it == r.points.end()) return 0;
        Armed& a = it->second;
        const auto n = ++a.hits;
        bool fire = false;
        if (!a.while_exists.empty()) {
            struct stat st {};
            fire = ::stat(a.while_exists.c_str(), &st) == 0;
        } else {
            fire = a.from_nth_on ? n >= a.nth : n == a.nth;
        }
        if (!fire) return 0;
        action = a.action;
    }
    switch (action) {
        case Action::Crash:
            // The lines logged before the crash are what the crash is read by.
            spdlog::default_logger()->flush();
            std::fprintf(stderr, "failpoint %.*s: crashing (SIGKILL)\n",
                         static_cast<int>(name.size()), name.data());
            ::kill(::getpid(), SIGKILL);
            ::_exit(137);  // not reached
        case Action::Eio: return EIO;
        case Action::Enospc: return ENOSPC;
    }
    return 0;
}

void configure(std::string_view spec) {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    r.load(spec);
}

bool any_armed() { return !registry().points.empty(); }

std::string describe_armed() { return registry().spec; }

}  // namespace op::failpoint
