#include "order_app.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>

#include <mutex>
#include <set>
#include <unordered_map>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "decision_waiters.hpp"
#include "guarded_server.hpp"
#include "op/bus/checkpoint_reporter.hpp"
#include "op/bus/publisher.hpp"
#include "op/bus/subscriber.hpp"
#include "op/events/ids.hpp"
#include "op/events/money.hpp"
#include "op/store/db.hpp"
#include "order_request.hpp"
#include "read_model.hpp"

namespace op::order {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

void reply(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
}

void reply_error(httplib::Response& res, int status, std::string message) {
    reply(res, status, {{"status", "error"}, {"error", std::move(message)}});
}

std::int64_t query_int(const httplib::Request& req, const char* name, std::int64_t fallback,
                       std::int64_t min, std::int64_t max, std::string& error) {
    if (!req.has_param(name)) return fallback;
    const auto text = req.get_param_value(name);
    try {
        std::size_t used = 0;
        const auto v = std::stoll(text, &used);
        if (used == text.size() && v >= min && v <= max) return v;
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): reported below
    }
    error = fmt::format("query parameter \"{}\" must be an integer from {} to {}", name, min, max);
    return fallback;
}

double millis(std::chrono::system_clock::duration d) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) /
           1000.0;
}

}  // namespace

struct OrderApp::Impl {
    OrderAppConfig config;
    std::mutex db_mu;  // guards db and model
    store::Db db;
    ReadModel model;
    DecisionWaiters waiters;
    bus::Publisher publisher;
    GuardedServer http;
    int bound_port = 0;
    socket_t listen_fd = -1;

    std::atomic<std::size_t> sync_waits{0};  // place-order requests holding a thread
    std::atomic<bool> subscriber_caught_up{false};
    std::atomic<std::uint64_t> applied_seq{0};
    std::atomic<std::uint64_t> broker_head{0};

    explicit Impl(OrderAppConfig cfg)
        : config(std::move(cfg)),
          db((std::filesystem::create_directories(config.data_dir), config.data_dir / "order.db")),
          model(db),
          publisher(config.endpoints),
          http(RequestLimits{config.request_timeout, config.max_header_bytes,
                             config.max_header_count}) {
        {
            std::lock_guard lock(db_mu);
            store::Transaction tx(db);
            model.seed_stock(config.initial_stock);
            tx.commit();
        }
        applied_seq = db.checkpoint();
        routes();
        http.new_task_queue = [n = config.http_threads] { return new httplib::ThreadPool(n); };
        // SO_REUSEADDR so a restart binds past TIME_WAIT, and not httplib's default
        // SO_REUSEPORT, which would let a second order service share the port silently.
        http.set_socket_options([this](socket_t sock) {
            int yes = 1;
            setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
            // Accepted sockets inherit it: httplib writes headers and body separately, and
            // Nagle would hold the body for the client's delayed ACK (40 ms).
            setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
            listen_fd = sock;
        });
        http.set_payload_max_length(config.max_body_bytes);
        // Debian's cpp-httplib (0.11) enforces that limit only on a Content-Length body: a
        // chunked or compressed one is read (and inflated) whole first. Refuse both before
        // the body is read; orders are small and every client can send a Content-Length.
        http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
            // Framing a proxy and this server could read differently is refused outright
            // (request smuggling): several Content-Lengths, or one that is not a plain number.
            // httplib would take the first, or wait for a body that never comes.
            const auto lengths = req.get_header_value_count("Content-Length");
            if (lengths > 1) {
                res.set_header("Connection", "close");
                reply_error(res, 400, "more than one Content-Length header");
                return httplib::Server::HandlerResponse::Handled;
            }
            if (lengths == 1) {
                const auto length = req.get_header_value("Content-Length");
                if (length.empty() || length.size() > 18 ||
                    length.find_first_not_of("0123456789") != std::string::npos) {
                    res.set_header("Connection", "close");
                    reply_error(res, 400, "Content-Length must be a non-negative integer");
                    return httplib::Server::HandlerResponse::Handled;
                }
            }
            if (req.has_header("Transfer-Encoding")) {
                res.set_header("Connection", "close");
                reply_error(res, 411,
                            "send the body with a Content-Length header; chunked transfer "
                            "encoding is not accepted");
                return httplib::Server::HandlerResponse::Handled;
            }
            const auto encoding = req.get_header_value("Content-Encoding");
            if (!encoding.empty() && encoding != "identity") {
                res.set_header("Connection", "close");
                reply_error(res, 415,
                            "Content-Encoding \"" + encoding.substr(0, 64) +
                                "\" is not accepted: send the JSON body uncompressed");
                return httplib::Server::HandlerResponse::Handled;
            }
            return httplib::Server::HandlerResponse::Unhandled;
        });
        http.set_read_timeout(5, 0);
        // httplib closes a keep-alive connection after 5 requests by default, so a busy
        // client paid a new TCP connection (accept, getsockname, setsockopt, shutdown) every
        // fifth order. A connection still gives its thread back after 5 s idle.
        http.set_keep_alive_max_count(1000);
        http.set_write_timeout(5, 0);
        http.set_error_handler(httplib::Server::HandlerWithResponse(
            [max_body = config.max_body_bytes](const httplib::Request&, httplib::Response& res) {
            // httplib answers 400 to any header section it could not read; the guarded stream
            // knows when that was one of the limits.
            if (res.status == 400 && res.body.empty()) {
                if (auto why = GuardedServer::header_refusal()) {
                    res.set_header("Connection", "close");
                    reply_error(res, 431, "request header fields too large: " + *why);
                    return httplib::Server::HandlerResponse::Handled;
                }
            }
            if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
            std::string message = res.status == 404   ? "no such endpoint"
                                  : res.status == 413 ? "request body is too large (limit: " +
                                                            std::to_string(max_body) + " bytes)"
                                  : res.status == 405 ? "method not allowed here"
                                  : res.status == 414 ? "the URL is too long"
                                                      : "bad request: a malformed request line "
                                                        "or header section";
            reply_error(res, res.status, message);
            return httplib::Server::HandlerResponse::Handled;
        }));
        http.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                                      std::exception_ptr ep) {
            std::string what = "unknown error";
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {  // NOLINT(bugprone-empty-catch): what stays "unknown error"
            }
            spdlog::error("{} {} failed: {}", req.method, req.path, what);
            reply_error(res, 500, "internal error: " + what);
        });
        bound_port = config.port == 0 ? http.bind_to_any_port(config.host)
                                      : (http.bind_to_port(config.host, config.port)
                                             ? config.port
                                             : -1);
        if (bound_port < 0) {
            throw std::runtime_error(fmt::format(
                "cannot listen on {}:{} (in use? choose another with --port)", config.host,
                config.port));
        }
        // Debian's libcpp-httplib is built with a listen backlog of 5: a burst of new
        // connections overflows it and clients wait a second for the SYN retransmit. Calling
        // listen() again on the bound socket raises the backlog.
        if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
    }

    // ---- subscriber side ----

    // Every event is applied to the read model as it arrives (and its waiters woken), but the
    // transaction is committed only when the feed goes quiet, or every kCommitInterval /
    // kCommitEvents under load: a commit writes each dirty page to the WAL, and committing
    // every small batch cost the order service more pwrite(2) calls than it made HTTP answers
    // (at 64 connections: 2,600 pwrite/s with 20 ms, 1,400/s with 100 ms).
    // Reads share the connection (under db_mu), so they see what is applied before it is
    // committed; that is safe because all of it is already durable in the broker's log, from
    // which a crash rebuilds it. applied_seq (reported as the checkpoint) is the committed seq.
    static constexpr auto kCommitInterval = std::chrono::milliseconds(100);
    static constexpr std::size_t kCommitEvents = 4096;

    void follow_events(const std::atomic<bool>& stop) {
        bus::Subscriber subscriber(
            bus::SubscriberOptions{config.endpoints, {}, applied_seq.load() + 1});
        bus::CheckpointReporter report_checkpoint(publisher, "order");
        std::optional<store::Transaction> open;  // guarded by db_mu
        Clock::time_point opened_at;
        std::size_t uncommitted = 0;
        auto commit = [&] {
            std::lock_guard lock(db_mu);
            db.set_checkpoint(subscriber.next_seq() - 1);
            open->commit();
            open.reset();
            uncommitted = 0;
            applied_seq = subscriber.next_seq() - 1;
        };
        while (!stop.load()) {
            report_checkpoint(applied_seq.load());
            auto batch = subscriber.poll(
                open ? std::chrono::milliseconds(2) : std::chrono::milliseconds(100), 1000);
            broker_head = subscriber.head_seq();
            if (!subscriber_caught_up && subscriber.caught_up()) {
                subscriber_caught_up = true;
                spdlog::info("order read model caught up at seq {}, now live",
                             subscriber.next_seq() - 1);
            }
            if (batch.empty()) {
                if (open) commit();
                continue;
            }
            std::vector<std::pair<std::string, Decision>> decided;
            {
                std::lock_guard lock(db_mu);
                if (!open) {
                    open.emplace(db);
                    opened_at = Clock::now();
                }
                for (const auto& d : batch) {
                    const auto& e = d.event;
                    if (auto decision = model.apply(e)) {
                        decided.emplace_back(e.order_id, std::move(*decision));
                    }
                    spdlog::info("order {} seq {} {} applied", e.order_id, e.seq, e.type_name());
                }
                uncommitted += batch.size();
            }
            for (const auto& [id, decision] : decided) waiters.decided(id, decision);
            if (uncommitted >= kCommitEvents || Clock::now() - opened_at >= kCommitInterval) {
                commit();
            }
        }
        if (open) commit();
    }

    // ---- HTTP side ----

    void routes() {
        http.Post("/place-order", [this](const auto& req, auto& res) { place(req, res, true); });
        http.Post("/orders", [this](const auto& req, auto& res) { place(req, res, false); });
        http.Get(R"(/orders/([A-Za-z0-9_-]{1,128}))",
                 [this](const auto& req, auto& res) { get_order(req, res); });
        http.Get("/orders", [this](const auto& req, auto& res) { list_orders(req, res); });
        http.Get("/inventory", [this](const auto& req, auto& res) { inventory(req, res); });
        http.Get("/healthz", [this](const auto&, auto& res) { health(res); });
    }

    void place(const httplib::Request& req, httplib::Response& res, bool wait_for_outcome) {
        const auto content_type = req.get_header_value("Content-Type");
        if (!content_type.empty() && content_type.find("application/json") == std::string::npos) {
            reply_error(res, 415,
                        "send the order as JSON with the header Content-Type: application/json");
            return;
        }
        // Counted before anything is published: a refused request places nothing.
        struct SyncWaitSlot {
            std::atomic<std::size_t>* count = nullptr;
            ~SyncWaitSlot() {
                if (count) count->fetch_sub(1);
            }
        } slot;
        if (wait_for_outcome) {
            if (sync_waits.fetch_add(1) >= config.max_sync_waits) {
                sync_waits.fetch_sub(1);
                res.set_header("Retry-After", "1");
                reply_error(res, 503,
                            fmt::format("{} orders are already waiting for their outcome (the "
                                        "limit); nothing was placed: retry shortly, or use POST "
                                        "/orders and poll GET /orders/{{id}}",
                                        config.max_sync_waits));
                return;
            }
            slot.count = &sync_waits;
        }
        auto parsed = parse_order_request(req.body);
        if (!parsed.order) {
            reply_error(res, parsed.error.http_status, parsed.error.message);
            return;
        }
        const auto& order = *parsed.order;

        // An Idempotency-Key names the order: a retry maps to the same order id and the same
        // OrderPlaced id, which the broker appends only once.
        const auto key = req.get_header_value("Idempotency-Key");
        const std::string order_id = key.empty() ? events::random_id() : events::hashed_id(key);
        if (!key.empty()) {
            std::optional<OrderView> existing;
            {
                std::lock_guard lock(db_mu);
                existing = model.order(order_id);
            }
            if (existing && (existing->item != order.item ||
                             existing->quantity != order.quantity ||
                             existing->amount_cents != order.amount_cents ||
                             existing->customer != order.customer)) {
                reply(res, 422,
                      {{"status", "error"},
                       {"order_id", order_id},
                       {"error", "this Idempotency-Key was already used for a different order "
                                 "(see GET /orders/" + order_id +
                                     "); use a new key for a new order"}});
                return;
            }
            if (existing && !wait_for_outcome) {
                reply(res, 202, {{"order_id", order_id}, {"status", existing->status}});
                return;
            }
        }

        events::Event placed;
        placed.order_id = order_id;
        placed.id = events::derived_id(order_id, "OrderPlaced");
        placed.ts = events::now_timestamp();
        placed.data = events::OrderPlaced{order.item, order.quantity, order.amount_cents,
                                          order.customer};

        const auto deadline = Clock::now() + config.decision_timeout;
        // Leaves the wait on every way out of this function.
        const auto ticket = waiters.enlist(order_id);
        const auto published =
            publisher.publish(placed, deadline, bus::WhenUnavailable::GiveUp).get();
        if (!published.durable()) {
            spdlog::warn("order {}: OrderPlaced not acknowledged: {}", order_id, published.error);
            if (published.status == bus::PublishStatus::Rejected) {
                reply(res, 422, {{"status", "error"},
                                 {"order_id", order_id},
                                 {"error", "the broker refused the order: " + published.error}});
                return;
            }
            res.set_header("Retry-After", "1");
            const std::string why =
                published.status == bus::PublishStatus::Unavailable
                    ? "the event broker cannot store orders right now (" + published.error +
                          "); the order was not placed: retry later"
                    : "the event broker did not confirm the order in time; it may still be "
                      "placed: check GET /orders/" + order_id +
                          " or retry with an Idempotency-Key";
            reply(res, 503, {{"status", "error"}, {"order_id", order_id}, {"error", why}});
            return;
        }
        spdlog::info("order {} placed at seq {} ({} x{} for {})", order_id, published.seq,
                     order.item, order.quantity, events::format_cents(order.amount_cents));
        if (!wait_for_outcome) {
            reply(res, 202, {{"order_id", order_id}, {"status", "placed"}, {"seq", published.seq}});
            return;
        }

        // A new order id cannot have been decided before this request enlisted, so only a
        // retry under an Idempotency-Key (of an order perhaps finished long ago) asks the read
        // model; otherwise the decision comes with the wake-up.
        std::optional<Decision> decision;
        if (!key.empty()) {
            std::lock_guard lock(db_mu);
            if (auto v = model.order(order_id)) decision = v->decision();
        }
        if (!decision) decision = waiters.wait(ticket, deadline);
        if (!decision) {
            reply(res, 202, {{"status", "pending"}, {"order_id", order_id}});
            return;
        }
        if (decision->failed) {
            reply(res, 200,
                  {{"status", "failed"}, {"reason", decision->reason}, {"order_id", order_id}});
        } else {
            reply(res, 200, {{"status", "success"}, {"order_id", order_id}});
        }
    }

    void get_order(const httplib::Request& req, httplib::Response& res) {
        const std::string id = req.matches[1];
        std::optional<OrderView> view;
        std::vector<TimelineEntry> timeline;
        {
            std::lock_guard lock(db_mu);
            view = model.order(id);
            if (view) timeline = model.timeline(id);
        }
        if (!view) {
            reply_error(res, 404, "no order with id " + id);
            return;
        }
        json body = order_json(*view, stall_cutoff());
        // Each hop's duration: from the event that caused it to this one.
        std::unordered_map<std::string, std::chrono::system_clock::time_point> at;
        std::optional<std::chrono::system_clock::time_point> placed_at;
        json events_json = json::array();
        for (const auto& t : timeline) {
            json entry = to_json(t);
            if (auto ts = events::parse_timestamp(t.ts)) {
                at[t.id] = *ts;
                if (!placed_at) placed_at = *ts;
                auto cause = at.find(t.causation_id);
                if (cause != at.end()) entry["hop_ms"] = millis(*ts - cause->second);
                entry["since_placed_ms"] = millis(*ts - *placed_at);
            }
            events_json.push_back(std::move(entry));
        }
        body["events"] = std::move(events_json);
        reply(res, 200, body);
    }

    // Orders whose last event is older than this made no progress within the stall bound.
    std::string stall_cutoff() const {
        return events::format_timestamp(std::chrono::system_clock::now() - config.stall_after);
    }

    void list_orders(const httplib::Request& req, httplib::Response& res) {
        std::string error;
        const auto limit = query_int(req, "limit", 50, 1, 1000, error);
        const auto offset = query_int(req, "offset", 0, 0, std::numeric_limits<int>::max(), error);
        const auto status = req.get_param_value("status");
        static const std::set<std::string> kStatuses = {
            "", "placed", "paid", "reserved", "shipped", "notified", "failed", "stalled"};
        if (!kStatuses.contains(status)) {
            error = "status must be one of placed, paid, reserved, shipped, notified, failed, "
                    "stalled";
        }
        if (!error.empty()) {
            reply_error(res, 400, error);
            return;
        }
        json orders = json::array();
        std::int64_t total = 0;
        const std::string cutoff = stall_cutoff();
        {
            std::lock_guard lock(db_mu);
            const auto views = status == "stalled" ? model.stalled(cutoff, limit, offset)
                                                   : model.orders(status, limit, offset);
            for (const auto& v : views) orders.push_back(order_json(v, cutoff));
            total = status == "stalled" ? model.count_stalled(cutoff) : model.count(status);
        }
        reply(res, 200, {{"orders", orders}, {"total", total}, {"limit", limit}, {"offset", offset}});
    }

    // An order as clients see it: the read model's view plus whether it is stalled (no event
    // for longer than --stall-after-ms while not terminal) and for how long.
    json order_json(const OrderView& v, const std::string& cutoff) const {
        json j = to_json(v);
        const bool stalled = !v.terminal() && v.updated_at < cutoff;
        j["stalled"] = stalled;
        if (stalled) {
            if (auto last = events::parse_timestamp(v.updated_at)) {
                j["stalled_for_ms"] = static_cast<std::int64_t>(millis(
                    std::chrono::system_clock::now() - *last));
            }
        }
        return j;
    }

    void inventory(const httplib::Request& req, httplib::Response& res) {
        std::string error;
        const auto limit = query_int(req, "limit", 100, 1, 1000, error);
        const auto offset = query_int(req, "offset", 0, 0, std::numeric_limits<int>::max(), error);
        if (!error.empty()) {
            reply_error(res, 400, error);
            return;
        }
        json items = json::array();
        std::int64_t total = 0;
        {
            std::lock_guard lock(db_mu);
            for (const auto& s : model.stock(limit, offset)) {
                items.push_back({{"item", s.item}, {"available", s.available},
                                 {"as_of_seq", s.as_of_seq}});
            }
            total = model.stock_count();
        }
        reply(res, 200, {{"items", items}, {"total", total}, {"limit", limit}, {"offset", offset}});
    }

    void health(httplib::Response& res) {
        const bool ready = subscriber_caught_up.load();
        reply(res, ready ? 200 : 503,
              {{"status", ready ? "ok" : "catching up"},
               {"applied_seq", applied_seq.load()},
               {"broker_head", broker_head.load()},
               {"waiting_requests", waiters.size()},
               {"sync_waits", sync_waits.load()}});
    }
};

OrderApp::OrderApp(OrderAppConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

OrderApp::~OrderApp() = default;

int OrderApp::port() const { return impl_->bound_port; }

void OrderApp::run(const std::atomic<bool>& stop) {
    // Named so that a profile (perf, top -H) tells the read model from the HTTP workers,
    // which inherit the name of the thread that starts them.
    std::thread follower([&] {
        pthread_setname_np(pthread_self(), "read-model");
        try {
            impl_->follow_events(stop);
        } catch (const std::exception& e) {
            spdlog::critical("order read model stopped: {}", e.what());
            std::terminate();  // a read model that silently stops would answer stale data
        }
    });
    std::thread server([&] {
        pthread_setname_np(pthread_self(), "http");
        impl_->http.listen_after_bind();
    });
    spdlog::info("order service listening on http://{}:{}", impl_->config.host, impl_->bound_port);
    while (!stop.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        impl_->http.flush_log();
    }
    impl_->http.stop();
    server.join();
    follower.join();
    impl_->publisher.stop();
    spdlog::info("order service stopped at seq {}", impl_->applied_seq.load());
}

}  // namespace op::order
