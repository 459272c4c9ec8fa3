// Puts a client socket into CurveZMQ client mode before it connects.
#pragma once

#include <zmq.hpp>

#include "op/bus/endpoints.hpp"

namespace op::bus {

inline void apply_client_curve(zmq::socket_t& socket, const ClientCurveKeys& keys) {
    if (!keys.enabled()) return;
    // 40 characters of Z85 each; libzmq decodes them (and refuses anything else with EINVAL).
    socket.set(zmq::sockopt::curve_serverkey, keys.server_public);
    socket.set(zmq::sockopt::curve_publickey, keys.public_key);
    socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
}

}  // namespace op::bus
