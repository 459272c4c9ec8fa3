// CurveZMQ keys on disk: one key pair per identity in a keys directory, and the broker's list
// of the keys it lets in (authorized_keys). Keys are Z85 text, 40 characters, as ZeroMQ prints
// them.
//
//   KEYS_DIR/broker.pub, broker.secret      the broker's pair (clients need broker.pub)
//   KEYS_DIR/<identity>.pub, .secret        one pair per client identity (payment, operator...)
//   KEYS_DIR/authorized_keys                "<identity> <public key>" lines: who may connect
//   KEYS_DIR/revoked/                       pairs taken out by `broker keys revoke`
//
// A .secret file (mode 0600) holds "public-key = ..." and "secret-key = ..." lines.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace op::security {

// A key file or authorized_keys that is missing, unreadable or malformed. The message names
// the file and says what to do.
class KeyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct KeyPair {
    std::string public_key;  // Z85
    std::string secret_key;  // Z85
};

inline constexpr std::string_view kBrokerIdentity = "broker";

// A new random pair (libsodium through libzmq).
KeyPair generate_key_pair();
// Whether `key` is 40 characters of Z85 that decode to a 32-byte key.
bool is_z85_key(std::string_view key);
// The 32 raw bytes of a Z85 key (throws KeyError if it is not one).
std::string decode_z85_key(std::string_view key);
// Z85 text of 32 raw bytes.
std::string encode_z85_key(std::string_view raw32);

// Identity names: 1-32 of [a-z0-9_-], so they are safe as file names and in log lines.
bool is_identity_name(std::string_view name);

std::filesystem::path public_key_path(const std::filesystem::path& keys_dir,
                                      std::string_view identity);
std::filesystem::path secret_key_path(const std::filesystem::path& keys_dir,
                                      std::string_view identity);
std::filesystem::path authorized_keys_path(const std::filesystem::path& keys_dir);

// Writes identity.secret (0600, written aside and renamed, so never half-written) and
// identity.pub.
void write_key_pair(const std::filesystem::path& keys_dir, std::string_view identity,
                    const KeyPair& pair);
// Reads identity.secret; throws KeyError naming the file when missing or malformed.
KeyPair read_key_pair(const std::filesystem::path& keys_dir, std::string_view identity);
// Reads identity.pub; throws KeyError naming the file when missing or malformed.
std::string read_public_key(const std::filesystem::path& keys_dir, std::string_view identity);

struct AuthorizedKey {
    std::string identity;
    std::string public_key;  // Z85
    bool operator==(const AuthorizedKey&) const = default;
};

// Parses authorized_keys text: "<identity> <z85 key>" per line, '#' comments and blank lines
// ignored. Throws KeyError with the line number of the first bad line (`source` names the
// file in the message). A key may appear only once; an identity may have several keys (while
// a rotation overlaps).
std::vector<AuthorizedKey> parse_authorized_keys(std::string_view text,
                                                 const std::string& source);
// Reads and parses the file (throws KeyError if missing, unreadable or malformed).
std::vector<AuthorizedKey> read_authorized_keys(const std::filesystem::path& file);
// Replaces the file atomically (written aside, fsynced, renamed), so a broker that reloads it
// never reads half of it.
void write_authorized_keys(const std::filesystem::path& file,
                           const std::vector<AuthorizedKey>& keys);

}  // namespace op::security
