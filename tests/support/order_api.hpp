// Small HTTP helpers over a running System's order service, shared by the integration tests.
// They never assert: a missing answer comes back as status 0 / a null body for the test to
// check with its own message.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "harness.hpp"

namespace op::test {

struct HttpAnswer {
    int status = 0;           // 0: no HTTP answer at all
    nlohmann::json body;      // discarded when the body was not JSON
    std::string error;        // httplib's reason when status is 0
};

inline HttpAnswer post_json(const System& system, const std::string& path,
                            const std::string& body) {
    auto client = system.http();
    auto res = client.Post(path, body, "application/json");
    if (!res) return {0, nullptr, httplib::to_string(res.error())};
    return {res->status, nlohmann::json::parse(res->body, nullptr, false), {}};
}

inline HttpAnswer get_json(const System& system, const std::string& path) {
    auto client = system.http();
    auto res = client.Get(path);
    if (!res) return {0, nullptr, httplib::to_string(res.error())};
    return {res->status, nlohmann::json::parse(res->body, nullptr, false), {}};
}

// The order exists and nothing more will happen to it (GET /orders/{id} says terminal).
inline bool order_terminal(const System& system, const std::string& order_id) {
    auto a = get_json(system, "/orders/" + order_id);
    return a.status == 200 && a.body.is_object() && a.body.value("terminal", false);
}

}  // namespace op::test
