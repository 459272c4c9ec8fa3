// The test runner's main. Tests talk to servers that may close a connection mid-request (a
// refused upload, a process killed on purpose): a write to such a socket must fail with EPIPE
// and be reported, not kill the test runner with SIGPIPE.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    return doctest::Context(argc, argv).run();
}
