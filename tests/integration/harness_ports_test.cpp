// The test harness itself: ports found free can be taken by a test running in parallel before
// the broker binds them, and a clean-clone CI run once failed that way. A broker whose first
// start finds its port in use is started again on new ports, and so is an order service whose
// HTTP port is taken.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <string>

#include "harness.hpp"
#include "order_api.hpp"

using op::test::System;

namespace {

int port_of(const std::string& endpoint) {
    return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

// Listens on 127.0.0.1:port, as another program would; closed on destruction.
struct Squatter {
    int fd = -1;
    explicit Squatter(int port) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd, 1) == 0);
    }
    ~Squatter() { ::close(fd); }
};

}  // namespace

// Squats the port `endpoint` names before start_all, then checks the system came up on another
// one (`endpoint` read again) and places an order.
template <typename Endpoint>
void comes_up_elsewhere(Endpoint endpoint) {
    System system;
    const std::string taken = endpoint(system);
    Squatter squatter(port_of(taken));
    system.start_all();
    CHECK(endpoint(system) != taken);
    const auto placed = op::test::post_json(system, "/place-order", R"({"item":"phone","amount":1})");
    CHECK(placed.status == 200);
}

TEST_CASE("harness: a broker's first start on a port taken meanwhile moves to free ports") {
    comes_up_elsewhere([](const System& s) { return s.live_endpoint(); });
}

TEST_CASE("harness: an order service whose HTTP port is taken meanwhile moves to a free one") {
    comes_up_elsewhere([](const System& s) { return s.order_url(); });
}
