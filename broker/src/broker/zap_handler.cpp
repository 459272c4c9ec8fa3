#include "zap_handler.hpp"

#include <array>
#include <cstdlib>
#include <cstring>
#include <future>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "op/runtime/failpoint.hpp"
#include "op/security/policy.hpp"

namespace op::broker {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";  // fixed by RFC 27
constexpr auto kStopCheck = std::chrono::milliseconds(100);

struct Verdict {
    const char* status;  // "200" lets the client in, "400" refuses it
    std::string text;
    std::string user_id;
};

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& ctx, std::vector<security::AuthorizedKey> keys)
    : ctx_(ctx),
      keys_(std::make_shared<const std::vector<security::AuthorizedKey>>(std::move(keys))) {
    std::promise<void> bound;
    auto ready = bound.get_future();
    thread_ = std::thread([this, bound = std::move(bound)]() mutable {
        std::optional<zmq::socket_t> socket;
        try {
            if (int err = failpoint::hit(failpoint::kZapStart); err != 0) {
                throw std::runtime_error(std::strerror(err));
            }
            socket.emplace(ctx_, zmq::socket_type::rep);
            socket->set(zmq::sockopt::linger, 0);
            socket->bind(kZapEndpoint);
        } catch (const std::exception& e) {
            bound.set_exception(std::make_exception_ptr(std::runtime_error(
                fmt::format("the ZAP handler did not start ({}); without one libzmq would let "
                            "in any client that knows the broker's public key, so the broker "
                            "does not serve",
                            e.what()))));
            return;
        }
        bound.set_value();
        try {
            run(*socket);
        } catch (const std::exception& e) {
            // The endpoints stay bound while this thread unwinds, and with no handler libzmq
            // would let every client in: end the process now instead (run.sh restarts it).
            spdlog::critical("the ZAP handler failed ({}); stopping the broker rather than "
                             "serving without authentication",
                             e.what());
            spdlog::default_logger()->flush();
            std::_Exit(70);
        }
    });
    try {
        ready.get();
    } catch (...) {
        thread_.join();
        throw;
    }
}

ZapHandler::~ZapHandler() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
}

void ZapHandler::replace_keys(std::vector<security::AuthorizedKey> keys) {
    auto next = std::make_shared<const std::vector<security::AuthorizedKey>>(std::move(keys));
    std::lock_guard lock(mu_);
    keys_ = std::move(next);
}

void ZapHandler::run(zmq::socket_t& socket) {
    while (!stop_.load()) {
        std::array<zmq::pollitem_t, 1> items = {
            zmq::pollitem_t{socket.handle(), 0, ZMQ_POLLIN, 0}};
        try {
            zmq::poll(items.data(), items.size(), kStopCheck);
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) continue;
            throw;
        }
        if (items[0].revents & ZMQ_POLLIN) answer(socket);
        denials_.tick();
    }
    denials_.flush();
}

void ZapHandler::answer(zmq::socket_t& socket) {
    std::vector<zmq::message_t> request;
    if (!zmq::recv_multipart(socket, std::back_inserter(request))) return;
    if (int err = failpoint::hit(failpoint::kZapRequest); err != 0) {
        throw std::runtime_error(std::strerror(err));
    }
    // [version, request id, domain, address, routing id, mechanism, credentials...]
    auto frame = [&](std::size_t i) {
        return i < request.size() ? request[i].to_string() : std::string();
    };
    const std::string domain = frame(2);
    const std::string address = frame(3);
    const std::string mechanism = frame(5);

    Verdict verdict{"400", "", ""};
    if (request.size() < 7 || frame(0) != "1.0" || mechanism != "CURVE" ||
        request[6].size() != 32) {
        verdict.text = fmt::format("only CURVE clients are served (mechanism \"{}\")", mechanism);
    } else {
        const std::string key = security::encode_z85_key(request[6].to_string_view());
        std::shared_ptr<const std::vector<security::AuthorizedKey>> keys;
        {
            std::lock_guard lock(mu_);
            keys = keys_;
        }
        const security::AuthorizedKey* match = nullptr;
        for (const auto& k : *keys) {
            if (k.public_key == key) match = &k;
        }
        if (match == nullptr) {
            verdict.text = fmt::format("unknown key {} (not in authorized_keys)", key);
        } else if (!security::may_connect(security::rights_of(match->identity), domain)) {
            verdict.text = fmt::format("identity \"{}\" may not use the {} endpoint",
                                       match->identity, domain);
        } else {
            verdict = {"200", "OK", match->identity};
        }
    }
    if (verdict.status == std::string_view("200")) {
        ++allowed_;
        spdlog::debug("let {} in on the {} endpoint from {}", verdict.user_id, domain, address);
    } else {
        ++denied_;
        denials_.warn(fmt::format("refused a connection to the {} endpoint from {}: {}", domain,
                                  address, verdict.text));
    }
    std::array<zmq::const_buffer, 6> reply = {
        zmq::buffer(std::string_view("1.0")), zmq::buffer(request.size() > 1
                                                              ? request[1].to_string_view()
                                                              : std::string_view()),
        zmq::buffer(std::string_view(verdict.status)), zmq::buffer(verdict.text),
        zmq::buffer(verdict.user_id), zmq::buffer(std::string_view())};
    zmq::send_multipart(socket, reply);
}

}  // namespace op::broker
