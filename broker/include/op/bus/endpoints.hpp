// Where the broker listens and, for a client, how it proves who it is: every process is told
// both on its command line (op/runtime/process.hpp).
#pragma once

#include <string>

namespace op::bus {

// A client's CurveZMQ keys, Z85 text. All empty: NULL security, for a broker started with
// --insecure (a CURVE broker refuses such a client at the handshake).
struct ClientCurveKeys {
    std::string server_public;  // the broker's public key
    std::string public_key;     // ours; the broker maps it to our identity
    std::string secret_key;

    bool enabled() const { return !server_public.empty(); }
};

struct Endpoints {
    std::string publish = "tcp://127.0.0.1:5555";
    std::string live = "tcp://127.0.0.1:5556";
    std::string replay = "tcp://127.0.0.1:5557";
    ClientCurveKeys curve;  // unused by the broker, which binds these
};

}  // namespace op::bus
