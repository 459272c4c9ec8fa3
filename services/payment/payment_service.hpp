// Payment: charges an order when it is placed (or refuses it above the limit), and refunds it
// when inventory cannot serve it. State: one row per order in SQLite, so a redelivered event
// never charges or refunds twice.
#pragma once

#include <string>
#include <vector>

#include "op/events/event.hpp"
#include "op/store/db.hpp"

namespace op::payment {

struct PaymentConfig {
    events::Cents limit_cents = 500'000;  // amounts above this fail with "Insufficient funds"
};

inline constexpr const char* kInsufficientFunds = events::reason::kInsufficientFunds;

class PaymentService {
public:
    PaymentService(store::Db& db, PaymentConfig config);

    static std::vector<events::EventType> topics();
    std::vector<events::Event> handle(const events::Event& event, const std::string& now);

private:
    std::vector<events::Event> on_placed(const events::Event& event,
                                         const events::OrderPlaced& placed,
                                         const std::string& now);
    std::vector<events::Event> on_out_of_stock(const events::Event& event,
                                               const events::OutOfStock& shortage,
                                               const std::string& now);

    store::Db& db_;
    PaymentConfig config_;
};

}  // namespace op::payment
