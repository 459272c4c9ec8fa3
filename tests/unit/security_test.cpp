// Keys on disk, authorized_keys parsing and the publish policy, without a broker.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "op/security/keys.hpp"
#include "op/security/policy.hpp"

namespace fs = std::filesystem;
using op::events::EventType;
using namespace op::security;

namespace {

struct ScratchDir {
    fs::path path = fs::temp_directory_path() /
                    ("op-keys-test-" + std::to_string(::getpid()) + "-" +
                     std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    ~ScratchDir() { fs::remove_all(path); }
};

std::string error_of(std::string_view text) {
    try {
        parse_authorized_keys(text, "authorized_keys");
    } catch (const KeyError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a key pair written to a keys dir reads back, and its secret is private") {
    ScratchDir dir;
    const auto pair = generate_key_pair();
    CHECK(is_z85_key(pair.public_key));
    CHECK(is_z85_key(pair.secret_key));
    write_key_pair(dir.path, "payment", pair);
    const auto back = read_key_pair(dir.path, "payment");
    CHECK(back.public_key == pair.public_key);
    CHECK(back.secret_key == pair.secret_key);
    CHECK(read_public_key(dir.path, "payment") == pair.public_key);
    struct stat st {};
    REQUIRE(::stat(secret_key_path(dir.path, "payment").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(decode_z85_key(pair.public_key).size() == 32);
    CHECK(encode_z85_key(decode_z85_key(pair.public_key)) == pair.public_key);
}

TEST_CASE("missing or damaged key files are refused with the file's name and what to do") {
    ScratchDir dir;
    fs::create_directories(dir.path);
    try {
        read_key_pair(dir.path, "inventory");
        FAIL("no error");
    } catch (const KeyError& e) {
        const std::string what = e.what();
        CHECK(what.find("inventory.secret") != std::string::npos);
        CHECK(what.find("broker keys init") != std::string::npos);
    }
    std::ofstream(secret_key_path(dir.path, "inventory")) << "public-key = short\n";
    CHECK_THROWS_AS(read_key_pair(dir.path, "inventory"), KeyError);
    CHECK_THROWS_AS(read_key_pair(dir.path, "../etc/passwd"), KeyError);
}

TEST_CASE("authorized_keys: comments and blanks skipped, bad lines refused by number") {
    const auto a = generate_key_pair().public_key;
    const auto b = generate_key_pair().public_key;
    const auto keys = parse_authorized_keys(
        "# who may connect\n\norder " + a + "\n  payment\t" + b + "  \r\n", "authorized_keys");
    REQUIRE(keys.size() == 2);
    CHECK(keys[0] == AuthorizedKey{"order", a});
    CHECK(keys[1] == AuthorizedKey{"payment", b});

    CHECK(error_of("order " + a + "\nPayment " + b + "\n").find("line 2: not an identity") !=
          std::string::npos);
    CHECK(error_of("order\n").find("line 1: not a Z85") != std::string::npos);
    CHECK(error_of("order " + a.substr(1) + "\n").find("not a Z85") != std::string::npos);
    CHECK(error_of("order " + a + "\npayment " + a + "\n").find("line 2: this key is listed "
                                                                 "twice") != std::string::npos);
    // An identity may hold two keys while a rotation overlaps.
    CHECK(parse_authorized_keys("order " + a + "\norder " + b + "\n", "f").size() == 2);
}

TEST_CASE("the policy: each service publishes only its own events, the operator only reads") {
    CHECK(rights_of("payment").may_publish_type(EventType::PaymentVerified));
    CHECK_FALSE(rights_of("fulfilment").may_publish_type(EventType::PaymentVerified));
    CHECK(rights_of("fulfilment").may_publish_type(EventType::Shipped));
    CHECK_FALSE(rights_of("inventory").may_publish_type(EventType::Shipped));
    CHECK_FALSE(rights_of("order").may_publish_type(EventType::PaymentRefunded));
    CHECK(rights_of("notification").may_publish_type(EventType::DeadLetter));
    CHECK_FALSE(rights_of("replay").may_publish_type(EventType::DeadLetter));

    const auto op = rights_of("operator");
    CHECK(op.may_read);
    CHECK_FALSE(op.may_publish_any());
    CHECK(may_connect(op, "live"));
    CHECK(may_connect(op, "replay"));
    CHECK_FALSE(may_connect(op, "publish"));

    const auto nobody = rights_of("mallory");
    CHECK_FALSE(nobody.may_read);
    CHECK_FALSE(may_connect(nobody, "live"));
    CHECK_FALSE(may_connect(rights_of("payment"), "admin"));
    for (auto name : policy_identities()) CHECK(is_identity_name(name));
}
