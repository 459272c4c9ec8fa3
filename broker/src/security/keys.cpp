#include "op/security/keys.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <zmq.h>

namespace op::security {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kZ85KeyLength = 40;
constexpr std::size_t kRawKeyLength = 32;

std::string read_text(const fs::path& file, std::string_view what) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw KeyError(fmt::format("cannot read {} {}: {} (create the keys with `broker keys "
                                   "init --data-dir DIR`, or run with --insecure)",
                                   what, file.string(), std::strerror(errno)));
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Writes `text` to a file beside `file`, fsyncs it and renames it over `file`, so a reader
// sees the old content or the new, never a mix.
void replace_file(const fs::path& file, const std::string& text, mode_t mode) {
    const fs::path temp = file.string() + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        throw KeyError(fmt::format("cannot write {}: {}", temp.string(), std::strerror(errno)));
    }
    ::fchmod(fd, mode);  // O_CREAT's mode is masked by the umask; a secret must be 0600 anyway
    std::size_t written = 0;
    while (written < text.size()) {
        const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = errno;
            ::close(fd);
            throw KeyError(fmt::format("cannot write {}: {}", temp.string(), std::strerror(err)));
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        throw KeyError(fmt::format("cannot write {}: {}", temp.string(), std::strerror(errno)));
    }
    std::error_code ec;
    fs::rename(temp, file, ec);
    if (ec) {
        throw KeyError(fmt::format("cannot rename {} to {}: {}", temp.string(), file.string(),
                                   ec.message()));
    }
}

std::string_view trim(std::string_view s) {
    constexpr std::string_view kSpace = " \t\r\n";
    const auto first = s.find_first_not_of(kSpace);
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

void check_identity(std::string_view identity) {
    if (!is_identity_name(identity)) {
        throw KeyError(fmt::format("\"{}\" is not an identity name (1-32 of a-z, 0-9, _ and -)",
                                   identity));
    }
}

}  // namespace

KeyPair generate_key_pair() {
    char public_key[kZ85KeyLength + 1];
    char secret_key[kZ85KeyLength + 1];
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
        throw KeyError(fmt::format("cannot make a CURVE key pair: {} (is libzmq built with "
                                   "CURVE support?)",
                                   zmq_strerror(zmq_errno())));
    }
    return {public_key, secret_key};
}

bool is_z85_key(std::string_view key) {
    if (key.size() != kZ85KeyLength) return false;
    const std::string text(key);
    std::uint8_t raw[kRawKeyLength];
    return zmq_z85_decode(raw, text.c_str()) != nullptr;
}

std::string decode_z85_key(std::string_view key) {
    if (!is_z85_key(key)) throw KeyError(fmt::format("\"{}\" is not a Z85 CURVE key", key));
    const std::string text(key);
    std::string raw(kRawKeyLength, '\0');
    zmq_z85_decode(reinterpret_cast<std::uint8_t*>(raw.data()), text.c_str());
    return raw;
}

std::string encode_z85_key(std::string_view raw32) {
    if (raw32.size() != kRawKeyLength) {
        throw KeyError(fmt::format("a CURVE key is 32 bytes, not {}", raw32.size()));
    }
    char text[kZ85KeyLength + 1];
    zmq_z85_encode(text, reinterpret_cast<const std::uint8_t*>(raw32.data()), raw32.size());
    return text;
}

bool is_identity_name(std::string_view name) {
    if (name.empty() || name.size() > 32) return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

fs::path public_key_path(const fs::path& keys_dir, std::string_view identity) {
    return keys_dir / (std::string(identity) + ".pub");
}

fs::path secret_key_path(const fs::path& keys_dir, std::string_view identity) {
    return keys_dir / (std::string(identity) + ".secret");
}

fs::path authorized_keys_path(const fs::path& keys_dir) { return keys_dir / "authorized_keys"; }

void write_key_pair(const fs::path& keys_dir, std::string_view identity, const KeyPair& pair) {
    check_identity(identity);
    std::error_code ec;
    fs::create_directories(keys_dir, ec);
    if (ec) {
        throw KeyError(fmt::format("cannot create the keys directory {}: {}", keys_dir.string(),
                                   ec.message()));
    }
    ::chmod(keys_dir.c_str(), 0700);
    replace_file(secret_key_path(keys_dir, identity),
                 fmt::format("# CurveZMQ key pair of \"{}\": keep it secret\npublic-key = "
                             "{}\nsecret-key = {}\n",
                             identity, pair.public_key, pair.secret_key),
                 0600);
    replace_file(public_key_path(keys_dir, identity), pair.public_key + "\n", 0644);
}

KeyPair read_key_pair(const fs::path& keys_dir, std::string_view identity) {
    check_identity(identity);
    const fs::path file = secret_key_path(keys_dir, identity);
    const std::string text = read_text(file, fmt::format("the key pair of \"{}\"", identity));
    KeyPair pair;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        const std::string_view l = trim(line);
        if (l.empty() || l.front() == '#') continue;
        const auto eq = l.find('=');
        if (eq == std::string_view::npos) continue;
        const auto name = trim(l.substr(0, eq));
        const auto value = trim(l.substr(eq + 1));
        if (name == "public-key") pair.public_key = value;
        if (name == "secret-key") pair.secret_key = value;
    }
    if (!is_z85_key(pair.public_key) || !is_z85_key(pair.secret_key)) {
        throw KeyError(fmt::format("{} does not hold a CURVE key pair (public-key = ..., "
                                   "secret-key = ..., 40 characters of Z85 each); make a new "
                                   "one with `broker keys rotate {}`",
                                   file.string(), identity));
    }
    return pair;
}

std::string read_public_key(const fs::path& keys_dir, std::string_view identity) {
    check_identity(identity);
    const fs::path file = public_key_path(keys_dir, identity);
    const std::string key(
        trim(read_text(file, fmt::format("the public key of \"{}\"", identity))));
    if (!is_z85_key(key)) {
        throw KeyError(fmt::format("{} does not hold a CURVE public key (40 characters of Z85)",
                                   file.string()));
    }
    return key;
}

std::vector<AuthorizedKey> parse_authorized_keys(std::string_view text,
                                                 const std::string& source) {
    std::vector<AuthorizedKey> keys;
    std::set<std::string> seen;
    std::size_t line_no = 0;
    while (!text.empty()) {
        const auto end = text.find('\n');
        const std::string_view raw = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        ++line_no;
        const std::string_view line = trim(raw);
        if (line.empty() || line.front() == '#') continue;
        const auto space = line.find_first_of(" \t");
        const std::string_view identity = line.substr(0, space);
        const std::string_view key =
            space == std::string_view::npos ? std::string_view{} : trim(line.substr(space));
        auto bad = [&](std::string_view why) {
            return KeyError(fmt::format("{} line {}: {} (expected \"<identity> <40-character "
                                        "Z85 public key>\")",
                                        source, line_no, why));
        };
        if (!is_identity_name(identity)) throw bad("not an identity name");
        if (!is_z85_key(key)) throw bad("not a Z85 CURVE public key");
        if (!seen.insert(std::string(key)).second) throw bad("this key is listed twice");
        keys.push_back({std::string(identity), std::string(key)});
    }
    return keys;
}

std::vector<AuthorizedKey> read_authorized_keys(const fs::path& file) {
    return parse_authorized_keys(read_text(file, "the authorized keys"), file.string());
}

void write_authorized_keys(const fs::path& file, const std::vector<AuthorizedKey>& keys) {
    std::string text =
        "# Who may connect to the broker: \"<identity> <CurveZMQ public key>\" per line.\n"
        "# What each identity may publish and read is the broker's policy (docs/SECURITY.md).\n"
        "# The broker reloads this file when it changes; a removed key is cut off at once.\n";
    for (const auto& k : keys) text += k.identity + " " + k.public_key + "\n";
    replace_file(file, text, 0644);
}

}  // namespace op::security
