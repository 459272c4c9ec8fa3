// runtime::raise_open_file_limit: what lets the order service and bench hold their connections
// where a shell starts programs at 1,024 open files.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include "op/runtime/process.hpp"

TEST_CASE("raise_open_file_limit raises the soft limit up to the hard one, and never lowers it") {
    rlimit before{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &before) == 0);
    if (before.rlim_cur == RLIM_INFINITY || before.rlim_cur < 64) return;  // nothing to show

    // Asking for less than is allowed changes nothing.
    CHECK(op::runtime::raise_open_file_limit(16) == before.rlim_cur);

    // Lower the soft limit (allowed without privileges), then ask for more than it.
    rlimit lowered = before;
    lowered.rlim_cur = 64;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    const std::size_t wanted = 100;
    CHECK(op::runtime::raise_open_file_limit(wanted) == wanted);
    rlimit now{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
    CHECK(now.rlim_cur == wanted);

    // Past the hard limit it stops at the hard limit and says so.
    if (before.rlim_max != RLIM_INFINITY) {
        CHECK(op::runtime::raise_open_file_limit(before.rlim_max + 1) == before.rlim_max);
    }
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &before) == 0);
}
