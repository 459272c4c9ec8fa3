// Says so, once, when the broker refuses a client's handshake. ZeroMQ reconnects quietly
// forever, so without this a client with a revoked key, the wrong broker key or the wrong
// --insecure setting would wait in silence. Not thread-safe: the socket's thread calls check().
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

namespace op::bus {

class HandshakeWatch : private zmq::monitor_t {
public:
    // `what` names the socket in messages, e.g. "publish endpoint tcp://127.0.0.1:5555".
    HandshakeWatch(zmq::socket_t& socket, std::string what) : what_(std::move(what)) {
        static std::atomic<unsigned> next{0};
        init(socket, "inproc://op-handshake-watch-" + std::to_string(next++),
             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    }

    // Handles whatever the socket reported since the last look; never blocks. Looks at most
    // every 100 ms: callers run it on every turn of their receive loop, and a handshake report
    // is not worth a poll per message. A signal that lands in here (a stop request) is left to
    // the caller's own loop to notice.
    void check() {
        const auto now = std::chrono::steady_clock::now();
        if (now < next_look_) return;
        next_look_ = now + std::chrono::milliseconds(100);
        try {
            while (check_event(0)) {
            }
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
        }
    }

private:
    void on_event_handshake_failed_auth(const zmq_event_t& event, const char*) override {
        report(fmt::format("the broker refused our key on its {} (ZAP status {}): is this "
                           "identity's key in the broker's authorized_keys, and may it use "
                           "this endpoint? (`broker keys list` shows both; the broker's log "
                           "says why)",
                           what_, event.value));
    }
    void on_event_handshake_failed_protocol(const zmq_event_t&, const char*) override {
        report(fmt::format("the handshake with the broker's {} failed: do the broker and this "
                           "program agree on --insecure?",
                           what_));
    }
    void on_event_handshake_failed_no_detail(const zmq_event_t&, const char*) override {
        report(fmt::format("the broker's {} dropped our handshake: is KEYS_DIR/broker.pub the "
                           "broker's current public key, and do we agree on --insecure?",
                           what_));
    }
    void on_event_handshake_succeeded(const zmq_event_t&, const char*) override {
        if (failing_) spdlog::info("connected to the broker's {} again", what_);
        failing_ = false;
    }

    void report(const std::string& message) {
        if (!failing_) spdlog::error("{}", message);
        failing_ = true;
    }

    std::string what_;
    bool failing_ = false;
    std::chrono::steady_clock::time_point next_look_{};
};

}  // namespace op::bus
