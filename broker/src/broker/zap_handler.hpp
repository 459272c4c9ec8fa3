// The broker's ZAP handler (ZeroMQ RFC 27): libzmq asks it, at every CURVE handshake, whether
// the client's public key may connect to that endpoint (its ZAP domain), and attaches the
// identity it answers as the connection's User-Id, which the broker then authorises publishes
// by. It answers from authorized_keys and the policy (op/security/policy.hpp), on a thread of
// its own in the broker's ZeroMQ context.
//
// libzmq lets in every client that knows the server's key when no handler is bound to
// inproc://zeromq.zap.01, so the handler is bound before any endpoint, and if it ever fails
// while the broker runs, it ends the whole process rather than leave the endpoints open.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "op/security/keys.hpp"
#include "op/runtime/rate_limited_log.hpp"

namespace op::broker {

class ZapHandler {
public:
    // Binds the handler in `ctx` and returns once it answers; throws std::runtime_error if it
    // cannot (then the broker must not bind its endpoints).
    ZapHandler(zmq::context_t& ctx, std::vector<security::AuthorizedKey> keys);
    ~ZapHandler();
    ZapHandler(const ZapHandler&) = delete;
    ZapHandler& operator=(const ZapHandler&) = delete;

    // The keys later handshakes are checked against (after authorized_keys changed).
    void replace_keys(std::vector<security::AuthorizedKey> keys);

    std::uint64_t allowed() const { return allowed_.load(); }
    std::uint64_t denied() const { return denied_.load(); }

private:
    void run(zmq::socket_t& socket);
    void answer(zmq::socket_t& socket);

    zmq::context_t& ctx_;
    std::mutex mu_;
    std::shared_ptr<const std::vector<security::AuthorizedKey>> keys_;  // guarded by mu_
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> allowed_{0};
    std::atomic<std::uint64_t> denied_{0};
    runtime::RateLimitedLog denials_{"refused connections"};
    std::thread thread_;
};

}  // namespace op::broker
