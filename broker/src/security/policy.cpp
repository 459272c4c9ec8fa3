#include "op/security/policy.hpp"

#include <initializer_list>
#include <string>

namespace op::security {
namespace {

using events::EventType;

Rights reader_publishing(std::initializer_list<EventType> types) {
    Rights rights;
    rights.may_read = true;
    for (auto type : types) rights.may_publish.set(static_cast<std::size_t>(type));
    return rights;
}

}  // namespace

Rights rights_of(std::string_view identity) {
    // A service that cannot handle an event publishes a DeadLetter of it (services/common).
    if (identity == "order") return reader_publishing({EventType::OrderPlaced, EventType::DeadLetter});
    if (identity == "payment") {
        return reader_publishing({EventType::PaymentVerified, EventType::PaymentFailed,
                                  EventType::PaymentRefunded, EventType::DeadLetter});
    }
    if (identity == "inventory") {
        return reader_publishing(
            {EventType::StockReserved, EventType::OutOfStock, EventType::DeadLetter});
    }
    if (identity == "fulfilment") return reader_publishing({EventType::Shipped, EventType::DeadLetter});
    if (identity == "notification") {
        return reader_publishing({EventType::CustomerNotified, EventType::DeadLetter});
    }
    if (identity == "replay") return reader_publishing({EventType::OrderPlaced});
    if (identity == "operator") return reader_publishing({});
    return {};
}

const std::vector<std::string_view>& policy_identities() {
    static const std::vector<std::string_view> names = {
        "order", "payment", "inventory", "fulfilment", "notification", "replay", "operator"};
    return names;
}

std::string_view zap_domain(Endpoint endpoint) {
    switch (endpoint) {
        case Endpoint::Publish: return "publish";
        case Endpoint::Live: return "live";
        case Endpoint::Replay: return "replay";
    }
    return "";
}

bool may_connect(const Rights& rights, std::string_view domain) {
    if (domain == zap_domain(Endpoint::Publish)) return rights.may_publish_any();
    if (domain == zap_domain(Endpoint::Live) || domain == zap_domain(Endpoint::Replay)) {
        return rights.may_read;
    }
    return false;
}

}  // namespace op::security
