#include "order_app.hpp"

#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>
#include <unordered_map>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "decision_waiters.hpp"
#include "http_loop.hpp"
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
using Responder = HttpLoop::Responder;

HttpResponse answer(int status, const json& body) {
    HttpResponse res;
    res.status = status;
    res.body = body.dump();
    return res;
}

HttpResponse error_answer(int status, std::string message) {
    return answer(status, {{"status", "error"}, {"error", std::move(message)}});
}

std::int64_t query_int(const HttpRequest& req, const char* name, std::int64_t fallback,
                       std::int64_t min, std::int64_t max, std::string& error) {
    const std::string* text = req.param(name);
    if (text == nullptr) return fallback;
    try {
        std::size_t used = 0;
        const auto v = std::stoll(*text, &used);
        if (used == text->size() && v >= min && v <= max) return v;
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): reported below
    }
    error = fmt::format("query parameter \"{}\" must be an integer from {} to {}", name, min, max);
    return fallback;
}

double millis(std::chrono::system_clock::duration d) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) /
           1000.0;
}

// What POST /place-order answers once it knows (or stops waiting for) the outcome.
HttpResponse decision_answer(const std::string& order_id, const std::optional<Decision>& decision) {
    if (!decision) return answer(202, {{"status", "pending"}, {"order_id", order_id}});
    if (decision->failed) {
        return answer(200,
                      {{"status", "failed"}, {"reason", decision->reason}, {"order_id", order_id}});
    }
    return answer(200, {{"status", "success"}, {"order_id", order_id}});
}

bool valid_order_id(std::string_view id) {
    return !id.empty() && id.size() <= 128 &&
           std::all_of(id.begin(), id.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
           });
}

// One placing request's answer. Several parties may try to give it (the publish's outcome, the
// decision, the deadline); the first one does, and it gives back the request's place among
// the waiting ones.
class PlaceAnswer {
public:
    PlaceAnswer(Responder respond, std::atomic<std::size_t>* sync_waits,
                DecisionWaiters& waiters)
        : respond_(std::move(respond)), sync_waits_(sync_waits), waiters_(waiters) {}

    // The request waits for the decision of `order_id`: called before the wait is enlisted
    // (so whichever thread answers it sees the id), then with the wait's ticket.
    void will_wait_for(const std::string& order_id) { order_id_ = order_id; }
    void waits_with(std::uint64_t ticket) { ticket_ = ticket; }

    // "Pending" (202) promises the order is placed, so it is answered only once both the wait's
    // deadline has passed and the OrderPlaced is durable, whichever comes second: a deadline
    // that passes while the broker has not acknowledged leaves the answer to the publish's
    // outcome (503 if it never is). Each side sets its bit; the one that finds the other's
    // bit already set answers.
    void deadline_passed() { settle(kDeadlinePassed); }
    void durable() { settle(kDurable); }

    void operator()(HttpResponse response) {
        if (answered_.exchange(true)) return;
        if (sync_waits_ != nullptr) sync_waits_->fetch_sub(1);
        // Answered by the decision or the deadline, the wait is gone already; this takes it
        // out when the answer came another way (nothing happens if it is gone).
        if (const auto ticket = ticket_.load(); ticket != 0) waiters_.withdraw(order_id_, ticket);
        respond_(std::move(response));
    }

private:
    static constexpr unsigned kDeadlinePassed = 1;
    static constexpr unsigned kDurable = 2;

    void settle(unsigned bit) {
        const unsigned other = bit == kDurable ? kDeadlinePassed : kDurable;
        if ((settled_.fetch_or(bit) & other) != 0) (*this)(decision_answer(order_id_, {}));
    }

    Responder respond_;
    std::atomic<std::size_t>* sync_waits_;
    DecisionWaiters& waiters_;
    std::atomic<unsigned> settled_{0};
    std::string order_id_;
    std::atomic<std::uint64_t> ticket_{0};
    std::atomic<bool> answered_{false};
};

// httplib's thread pool, joined exactly once (its destructor does not join, and a second
// shutdown() would join threads already joined).
class QueryThreads {
public:
    explicit QueryThreads(std::size_t n) : pool_(n) {}
    ~QueryThreads() { shutdown(); }
    QueryThreads(const QueryThreads&) = delete;
    QueryThreads& operator=(const QueryThreads&) = delete;

    void enqueue(std::function<void()> job) { pool_.enqueue(std::move(job)); }
    // Runs what is queued, then ends the threads.
    void shutdown() {
        if (std::exchange(stopped_, true)) return;
        pool_.shutdown();
    }

private:
    httplib::ThreadPool pool_;
    bool stopped_ = false;
};

}  // namespace

struct OrderApp::Impl {
    OrderAppConfig config;
    std::mutex db_mu;  // guards db and model
    store::Db db;
    ReadModel model;
    DecisionWaiters waiters;
    bus::Publisher publisher;
    // Answers what needs the read model (GETs, an Idempotency-Key's lookup), so the HTTP loop
    // never waits for db_mu while the subscriber thread applies a batch.
    QueryThreads queries;
    HttpLoop http;

    std::atomic<std::size_t> sync_waits{0};  // place-order requests waiting for their outcome
    std::atomic<bool> subscriber_caught_up{false};
    std::atomic<std::uint64_t> applied_seq{0};
    std::atomic<std::uint64_t> broker_head{0};

    explicit Impl(OrderAppConfig cfg)
        : config(std::move(cfg)),
          db((std::filesystem::create_directories(config.data_dir), config.data_dir / "order.db")),
          model(db),
          publisher(config.endpoints),
          queries(config.query_threads),
          http(config.host, config.port,
               RequestLimits{config.request_timeout, config.max_header_bytes,
                             config.max_header_count, 8192, 8192, config.max_body_bytes},
               config.max_connections,
               [this](HttpRequest&& req, Responder respond) {
                   route(std::move(req), std::move(respond));
               }) {
        std::lock_guard lock(db_mu);
        store::Transaction tx(db);
        model.seed_stock(config.initial_stock);
        tx.commit();
        applied_seq = db.checkpoint();
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

    // On the HTTP loop's thread: must not block. What reads the read model goes to `queries`.
    void route(HttpRequest&& req, Responder respond) {
        const std::string& path = req.path;
        const std::string& method = req.method;
        auto not_allowed = [&](const char* allow) {
            auto res = error_answer(405, "method not allowed here (allowed: " +
                                             std::string(allow) + ")");
            res.headers.emplace_back("Allow", allow);
            respond(std::move(res));
        };
        if (path == "/place-order") {
            if (method != "POST") return not_allowed("POST");
            return guarded(respond, [&] { place(req, respond, true); });
        }
        if (path == "/orders") {
            if (method == "POST") return guarded(respond, [&] { place(req, respond, false); });
            if (method != "GET") return not_allowed("GET, POST");
            return query(std::move(req), std::move(respond), &Impl::list_orders);
        }
        if (path.starts_with("/orders/") && valid_order_id(std::string_view(path).substr(8))) {
            if (method != "GET") return not_allowed("GET");
            return query(std::move(req), std::move(respond), &Impl::get_order);
        }
        if (path == "/inventory") {
            if (method != "GET") return not_allowed("GET");
            return query(std::move(req), std::move(respond), &Impl::inventory);
        }
        if (path == "/healthz") {
            if (method != "GET") return not_allowed("GET");
            return respond(health());
        }
        respond(error_answer(404, "no such endpoint"));
    }

    // Runs `work`, answering 500 with the reason if it throws (the request is not lost).
    template <typename Respond, typename Work>
    static void guarded(const Respond& respond, Work&& work) {
        try {
            work();
        } catch (const std::exception& e) {
            spdlog::error("request failed: {}", e.what());
            respond(error_answer(500, std::string("internal error: ") + e.what()));
        }
    }

    void query(HttpRequest&& req, Responder respond,
               HttpResponse (Impl::*handler)(const HttpRequest&)) {
        queries.enqueue([this, req = std::move(req), respond = std::move(respond), handler] {
            guarded(respond, [&] { respond((this->*handler)(req)); });
        });
    }

    void place(const HttpRequest& req, const Responder& respond, bool wait_for_outcome) {
        const auto content_type = req.header("Content-Type");
        if (!content_type.empty() && content_type.find("application/json") == std::string::npos) {
            return respond(error_answer(
                415, "send the order as JSON with the header Content-Type: application/json"));
        }
        // Counted before anything is published: a refused request places nothing.
        if (wait_for_outcome && sync_waits.fetch_add(1) >= config.max_sync_waits) {
            sync_waits.fetch_sub(1);
            auto res = error_answer(
                503, fmt::format("{} orders are already waiting for their outcome (the limit); "
                                 "nothing was placed: retry shortly, or use POST /orders and "
                                 "poll GET /orders/{{id}}",
                                 config.max_sync_waits));
            res.headers.emplace_back("Retry-After", "1");
            return respond(std::move(res));
        }
        auto reply = std::make_shared<PlaceAnswer>(
            respond, wait_for_outcome ? &sync_waits : nullptr, waiters);
        auto parsed = parse_order_request(req.body);
        if (!parsed.order) {
            return (*reply)(error_answer(parsed.error.http_status, parsed.error.message));
        }
        const auto deadline = Clock::now() + config.decision_timeout;
        // An Idempotency-Key names the order: a retry maps to the same order id and the same
        // OrderPlaced id, which the broker appends only once. Whether it is placed already is
        // the read model's to say, which the loop does not wait for.
        const auto key = req.header("Idempotency-Key");
        if (!key.empty()) {
            queries.enqueue([this, reply, order = *parsed.order, order_id = events::hashed_id(key),
                             wait_for_outcome, deadline] {
                place_keyed(reply, order, order_id, wait_for_outcome, deadline);
            });
            return;
        }
        const auto order_id = events::random_id();
        // Enlisted before publishing: a new order cannot be decided before its OrderPlaced is
        // appended, so the decision always finds its waiter.
        if (wait_for_outcome) enlist(reply, order_id, deadline);
        publish_order(reply, *parsed.order, order_id, wait_for_outcome, deadline);
    }

    // The request waits for its order's decision; its ticket goes with the answer, so an
    // answer given another way takes the wait out at once (/healthz counts waits).
    void enlist(const std::shared_ptr<PlaceAnswer>& reply, const std::string& order_id,
                Clock::time_point deadline) {
        reply->will_wait_for(order_id);
        reply->waits_with(waiters.enlist(order_id, deadline,
                                         [reply, order_id](std::optional<Decision> d) {
                                             // A decision means the order is placed; a
                                             // deadline alone does not.
                                             if (d) return (*reply)(decision_answer(order_id, d));
                                             reply->deadline_passed();
                                         }));
    }

    // On a query thread: a retry of an order may find it placed, or even decided, already.
    void place_keyed(const std::shared_ptr<PlaceAnswer>& reply, const OrderRequest& order,
                     const std::string& order_id, bool wait_for_outcome,
                     Clock::time_point deadline) {
        guarded([&](HttpResponse r) { (*reply)(std::move(r)); }, [&] {
            // Enlisted before the look, so a decision applied in between is not missed.
            if (wait_for_outcome) enlist(reply, order_id, deadline);
            std::optional<OrderView> existing;
            {
                std::lock_guard lock(db_mu);
                existing = model.order(order_id);
            }
            if (!existing) return publish_order(reply, order, order_id, wait_for_outcome, deadline);
            if (existing->item != order.item || existing->quantity != order.quantity ||
                existing->amount_cents != order.amount_cents ||
                existing->customer != order.customer) {
                return (*reply)(answer(
                    422, {{"status", "error"},
                          {"order_id", order_id},
                          {"error", "this Idempotency-Key was already used for a different order "
                                    "(see GET /orders/" + order_id +
                                        "); use a new key for a new order"}}));
            }
            // Placed before (the read model holds only what the broker made durable): nothing
            // to publish again. A waiting retry is answered when the decision comes.
            if (!wait_for_outcome) {
                return (*reply)(
                    answer(202, {{"order_id", order_id}, {"status", existing->status}}));
            }
            if (auto decision = existing->decision()) {
                return (*reply)(decision_answer(order_id, decision));
            }
            reply->durable();
        });
    }

    void publish_order(const std::shared_ptr<PlaceAnswer>& reply, const OrderRequest& order,
                       const std::string& order_id, bool wait_for_outcome,
                       Clock::time_point deadline) {
        events::Event placed;
        placed.order_id = order_id;
        placed.id = events::derived_id(order_id, "OrderPlaced");
        placed.ts = events::now_timestamp();
        placed.data = events::OrderPlaced{order.item, order.quantity, order.amount_cents,
                                          order.customer};
        // Called on the publisher's thread once the broker has answered (or the deadline).
        publisher.publish_then(
            placed, deadline, bus::WhenUnavailable::GiveUp,
            [reply, order_id, wait_for_outcome, item = order.item, quantity = order.quantity,
             amount = order.amount_cents](bus::PublishResult published) {
                if (!published.durable()) {
                    spdlog::warn("order {}: OrderPlaced not acknowledged: {}", order_id,
                                 published.error);
                    if (published.status == bus::PublishStatus::Rejected) {
                        return (*reply)(answer(
                            422, {{"status", "error"},
                                  {"order_id", order_id},
                                  {"error", "the broker refused the order: " + published.error}}));
                    }
                    const std::string why =
                        published.status == bus::PublishStatus::Unavailable
                            ? "the event broker cannot store orders right now (" +
                                  published.error + "); the order was not placed: retry later"
                            : "the event broker did not confirm the order in time; it may still "
                              "be placed: check GET /orders/" + order_id +
                                  " or retry with an Idempotency-Key";
                    auto res =
                        answer(503, {{"status", "error"}, {"order_id", order_id}, {"error", why}});
                    res.headers.emplace_back("Retry-After", "1");
                    return (*reply)(std::move(res));
                }
                spdlog::info("order {} placed at seq {} ({} x{} for {})", order_id, published.seq,
                             item, quantity, events::format_cents(amount));
                if (!wait_for_outcome) {
                    return (*reply)(answer(202, {{"order_id", order_id},
                                                 {"status", "placed"},
                                                 {"seq", published.seq}}));
                }
                reply->durable();
            });
    }

    HttpResponse get_order(const HttpRequest& req) {
        const std::string id = req.path.substr(8);  // after "/orders/"
        std::optional<OrderView> view;
        std::vector<TimelineEntry> timeline;
        {
            std::lock_guard lock(db_mu);
            view = model.order(id);
            if (view) timeline = model.timeline(id);
        }
        if (!view) return error_answer(404, "no order with id " + id);
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
        return answer(200, body);
    }

    // Orders whose last event is older than this made no progress within the stall bound.
    std::string stall_cutoff() const {
        return events::format_timestamp(std::chrono::system_clock::now() - config.stall_after);
    }

    HttpResponse list_orders(const HttpRequest& req) {
        std::string error;
        const auto limit = query_int(req, "limit", 50, 1, 1000, error);
        const auto offset = query_int(req, "offset", 0, 0, std::numeric_limits<int>::max(), error);
        const std::string* status_param = req.param("status");
        const std::string status = status_param != nullptr ? *status_param : "";
        static const std::set<std::string> kStatuses = {
            "", "placed", "paid", "reserved", "shipped", "notified", "failed", "stalled"};
        if (!kStatuses.contains(status)) {
            error = "status must be one of placed, paid, reserved, shipped, notified, failed, "
                    "stalled";
        }
        if (!error.empty()) return error_answer(400, error);
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
        return answer(200,
                      {{"orders", orders}, {"total", total}, {"limit", limit}, {"offset", offset}});
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

    HttpResponse inventory(const HttpRequest& req) {
        std::string error;
        const auto limit = query_int(req, "limit", 100, 1, 1000, error);
        const auto offset = query_int(req, "offset", 0, 0, std::numeric_limits<int>::max(), error);
        if (!error.empty()) return error_answer(400, error);
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
        return answer(200,
                      {{"items", items}, {"total", total}, {"limit", limit}, {"offset", offset}});
    }

    HttpResponse health() {
        const bool ready = subscriber_caught_up.load();
        return answer(ready ? 200 : 503,
                      {{"status", ready ? "ok" : "catching up"},
                       {"applied_seq", applied_seq.load()},
                       {"broker_head", broker_head.load()},
                       {"waiting_requests", waiters.size()},
                       {"sync_waits", sync_waits.load()}});
    }
};

OrderApp::OrderApp(OrderAppConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

OrderApp::~OrderApp() = default;

int OrderApp::port() const { return impl_->http.port(); }

void OrderApp::run(const std::atomic<bool>& stop) {
    // Named so that a profile (perf, top -H) tells the read model from the HTTP loop.
    std::thread follower([&] {
        pthread_setname_np(pthread_self(), "read-model");
        try {
            impl_->follow_events(stop);
        } catch (const std::exception& e) {
            spdlog::critical("order read model stopped: {}", e.what());
            std::terminate();  // a read model that silently stops would answer stale data
        }
    });
    spdlog::info("order service listening on http://{}:{}", impl_->config.host,
                 impl_->http.port());
    impl_->http.run(stop, [this] { impl_->waiters.expire(Clock::now()); });
    impl_->queries.shutdown();
    follower.join();
    impl_->publisher.stop();
    spdlog::info("order service stopped at seq {}", impl_->applied_seq.load());
}

}  // namespace op::order
