// Who may do what on the bus. The broker asks this with the identity its ZAP handler
// established for a connection (ZeroMQ's User-Id), never with anything inside an event: in a
// choreography whoever can publish PaymentVerified can ship goods without paying.
//
//   identity       may publish                                            may read
//   order          OrderPlaced, DeadLetter                                yes
//   payment        PaymentVerified, PaymentFailed, PaymentRefunded,       yes
//                  DeadLetter
//   inventory      StockReserved, OutOfStock, DeadLetter                  yes
//   fulfilment     Shipped, DeadLetter                                    yes
//   notification   CustomerNotified, DeadLetter                           yes
//   replay         OrderPlaced (feeds a recorded log into a test system)  yes
//   operator       nothing (the tap, `broker export`)                     yes
//   anyone else    nothing                                                no
#pragma once

#include <bitset>
#include <string_view>
#include <vector>

#include "op/events/event.hpp"

namespace op::security {

struct Rights {
    bool may_read = false;
    std::bitset<events::kEventTypeCount> may_publish;

    bool may_publish_any() const { return may_publish.any(); }
    bool may_publish_type(events::EventType type) const {
        return may_publish.test(static_cast<std::size_t>(type));
    }
};

// The rights of an identity (no rights at all for one the policy does not name).
Rights rights_of(std::string_view identity);

// Every identity the policy names, i.e. the client key pairs `broker keys init` creates.
const std::vector<std::string_view>& policy_identities();

// What a connection to each broker endpoint needs (the endpoint's ZAP domain).
enum class Endpoint { Publish, Live, Replay };
std::string_view zap_domain(Endpoint endpoint);
// Whether `rights` allow connecting to the endpoint whose ZAP domain is `domain`; false for an
// unknown domain.
bool may_connect(const Rights& rights, std::string_view domain);

}  // namespace op::security
