// Notification: tells the customer how their order ended: shipped (success), or failed with
// the reason (payment refused, out of stock). One notification per order outcome.
#pragma once

#include <string>
#include <vector>

#include "op/events/event.hpp"
#include "op/store/db.hpp"

namespace op::notification {

class NotificationService {
public:
    explicit NotificationService(store::Db& db);

    static std::vector<events::EventType> topics();
    std::vector<events::Event> handle(const events::Event& event, const std::string& now);

    // The outbox line for one CustomerNotified: NDJSON with the notification's event id (the
    // same if the line is ever repeated), order, customer, outcome, reason.
    static std::string outbox_line(const events::Event& notified);

private:
    store::Db& db_;
};

}  // namespace op::notification
