#include "keys_command.hpp"

#include <algorithm>
#include <chrono>
#include <ostream>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "op/security/keys.hpp"
#include "op/security/policy.hpp"

namespace op::broker {
namespace {

namespace fs = std::filesystem;
using security::AuthorizedKey;

std::vector<AuthorizedKey> authorized_or_empty(const fs::path& file) {
    if (!fs::exists(file)) return {};
    return security::read_authorized_keys(file);
}

void check_client_identity(const std::string& identity) {
    if (!security::is_identity_name(identity) || identity == security::kBrokerIdentity) {
        throw security::KeyError(fmt::format(
            "\"{}\" is not a client identity (1-32 of a-z, 0-9, _ and -, not \"broker\")",
            identity));
    }
}

// Moves identity's key files into revoked/, stamped, so an old key can be looked up later.
void archive_pair(const fs::path& dir, const std::string& identity) {
    const auto stamp = fmt::format("{:%Y%m%dT%H%M%S}", std::chrono::system_clock::now());
    fs::create_directories(dir / "revoked");
    for (const auto& file :
         {security::secret_key_path(dir, identity), security::public_key_path(dir, identity)}) {
        if (fs::exists(file)) {
            fs::rename(file, dir / "revoked" / (stamp + "-" + file.filename().string()));
        }
    }
}

int init(const fs::path& dir, std::ostream& out) {
    std::vector<std::string> made;
    std::vector<std::string> authorized;
    if (!fs::exists(security::secret_key_path(dir, security::kBrokerIdentity))) {
        security::write_key_pair(dir, security::kBrokerIdentity, security::generate_key_pair());
        made.emplace_back(security::kBrokerIdentity);
    }
    auto keys = authorized_or_empty(security::authorized_keys_path(dir));
    bool changed = !fs::exists(security::authorized_keys_path(dir));
    for (auto name : security::policy_identities()) {
        const std::string identity(name);
        if (!fs::exists(security::secret_key_path(dir, identity))) {
            security::write_key_pair(dir, identity, security::generate_key_pair());
            made.push_back(identity);
        }
        const AuthorizedKey key{identity, security::read_key_pair(dir, identity).public_key};
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
            keys.push_back(key);
            authorized.push_back(identity);
            changed = true;
        }
    }
    if (changed) security::write_authorized_keys(security::authorized_keys_path(dir), keys);
    const auto list = [](const std::vector<std::string>& names) {
        std::string text;
        for (const auto& n : names) text += (text.empty() ? "" : ", ") + n;
        return text;
    };
    if (!made.empty()) out << "made key pairs for " << list(made) << "\n";
    if (!authorized.empty()) out << "authorized " << list(authorized) << "\n";
    out << "keys ready in " << dir.string() << "\n";
    return 0;
}

int rotate(const fs::path& dir, const std::string& identity, std::ostream& out) {
    if (identity == security::kBrokerIdentity) {
        archive_pair(dir, identity);
        security::write_key_pair(dir, identity, security::generate_key_pair());
        out << "made a new key pair for the broker: restart the broker, then every client "
               "(they read broker.pub when they start)\n";
        return 0;
    }
    check_client_identity(identity);
    const auto file = security::authorized_keys_path(dir);
    auto keys = authorized_or_empty(file);
    std::erase_if(keys, [&](const AuthorizedKey& k) { return k.identity == identity; });
    archive_pair(dir, identity);
    const auto pair = security::generate_key_pair();
    security::write_key_pair(dir, identity, pair);
    keys.push_back({identity, pair.public_key});
    security::write_authorized_keys(file, keys);
    out << fmt::format(
        "new key for \"{}\": {}\nthe broker cuts the old key off within a second; restart the "
        "{} process so that it uses the new one\n",
        identity, pair.public_key, identity);
    return 0;
}

int revoke(const fs::path& dir, const std::string& identity, std::ostream& out) {
    check_client_identity(identity);
    const auto file = security::authorized_keys_path(dir);
    auto keys = authorized_or_empty(file);
    const auto removed =
        std::erase_if(keys, [&](const AuthorizedKey& k) { return k.identity == identity; });
    if (removed == 0) {
        out << "\"" << identity << "\" has no key in " << file.string() << "\n";
        return 1;
    }
    security::write_authorized_keys(file, keys);
    archive_pair(dir, identity);
    out << fmt::format(
        "revoked {} key(s) of \"{}\": the broker cuts them off within a second. Its key files "
        "are in {}; `broker keys rotate {}` gives it a new key\n",
        removed, identity, (dir / "revoked").string(), identity);
    return 0;
}

std::string describe_rights(const security::Rights& rights) {
    std::string publishes;
    for (int i = 0; i < events::kEventTypeCount; ++i) {
        const auto type = static_cast<events::EventType>(i);
        if (!rights.may_publish_type(type)) continue;
        if (!publishes.empty()) publishes += ",";
        publishes += events::type_name(type);
    }
    return fmt::format("read: {}  publish: {}", rights.may_read ? "yes" : "no",
                       publishes.empty() ? "nothing" : publishes);
}

int list(const fs::path& dir, std::ostream& out) {
    const auto file = security::authorized_keys_path(dir);
    const auto keys = security::read_authorized_keys(file);
    out << fmt::format("{} authorized keys in {}\n", keys.size(), file.string());
    for (const auto& k : keys) {
        out << fmt::format("{:<14} {}  {}\n", k.identity, k.public_key,
                           describe_rights(security::rights_of(k.identity)));
    }
    return 0;
}

}  // namespace

CLI::App* add_keys_command(CLI::App& app, KeysCommand& command) {
    auto* keys = app.add_subcommand(
        "keys", "Make and manage the CurveZMQ keys: one pair for the broker, one per client "
                "identity, and authorized_keys, the list of keys the broker lets in");
    keys->add_option("--data-dir", command.data_dir, "the deployment's data dir")
        ->capture_default_str();
    keys->add_option("--keys-dir", command.keys_dir, "where the keys are (default DATA_DIR/keys)");
    keys->require_subcommand(1);
    // `broker keys init --data-dir var` as well as `broker keys --data-dir var init`.
    keys->fallthrough();
    keys->add_subcommand("init",
                         "make whatever keys are missing (the broker's, and one per identity of "
                         "the policy) and authorize them; keeps existing keys, so it is safe to "
                         "run at every start")
        ->callback([&] { command.action = "init"; });
    auto* rotate = keys->add_subcommand(
        "rotate", "give IDENTITY a new key pair; the broker cuts the old key off at once, and "
                  "that one process must restart to use its new key");
    rotate->add_option("identity", command.identity, "the identity, e.g. payment, or broker")
        ->required();
    rotate->callback([&] { command.action = "rotate"; });
    auto* revoke = keys->add_subcommand(
        "revoke", "take IDENTITY's keys out of authorized_keys (the broker cuts its connections "
                  "within a second, without a restart) and archive its key files");
    revoke->add_option("identity", command.identity, "the identity, e.g. fulfilment")->required();
    revoke->callback([&] { command.action = "revoke"; });
    keys->add_subcommand("list", "print each authorized key with what the policy lets it do")
        ->callback([&] { command.action = "list"; });
    for (auto* action : keys->get_subcommands({})) action->fallthrough();
    return keys;
}

int run_keys_command(const KeysCommand& command, std::ostream& out) {
    const auto dir = command.dir();
    if (command.action == "init") return init(dir, out);
    if (command.action == "rotate") return rotate(dir, command.identity, out);
    if (command.action == "revoke") return revoke(dir, command.identity, out);
    return list(dir, out);
}

}  // namespace op::broker
