// Raw ZeroMQ client sockets for tests that speak to the broker's endpoints frame by frame
// (garbage, forged events, handshakes that must fail) rather than through the bus library.
#pragma once

#include <string>

#include <zmq.hpp>

#include "op/bus/endpoints.hpp"

namespace op::test {

// A socket connected to `endpoint`, with `keys` for CurveZMQ (none: NULL security).
inline zmq::socket_t raw_client(zmq::context_t& ctx, zmq::socket_type type,
                                const std::string& endpoint,
                                const bus::ClientCurveKeys& keys = {}) {
    zmq::socket_t s(ctx, type);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::sndhwm, 0);
    s.set(zmq::sockopt::rcvhwm, 0);
    if (keys.enabled()) {
        s.set(zmq::sockopt::curve_serverkey, keys.server_public);
        s.set(zmq::sockopt::curve_publickey, keys.public_key);
        s.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    }
    s.connect(endpoint);
    return s;
}

}  // namespace op::test
