#include "transport/domain_key.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "meshy/domain_key.hpp"
#include "meshy/error.hpp"

namespace meshy::detail {
namespace {

// A key file is a few lines; anything much larger is not one.
constexpr std::size_t max_key_file = 4096;

void ensure_sodium() {
    if (sodium_init() < 0) {
        throw Error(errc::io_error, "libsodium failed to initialise");
    }
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

}  // namespace

DomainKey generate_domain_key() {
    ensure_sodium();
    DomainKey key;
    randombytes_buf(key.bytes.data(), key.bytes.size());
    return key;
}

std::string format_domain_key(const DomainKey& key) {
    ensure_sodium();
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, key.bytes.data(), key.bytes.size(), sodium_base64_VARIANT_ORIGINAL);
    std::string text(domain_key_header);
    text += "\n";
    text += b64;
    text += "\n";
    sodium_memzero(b64, sizeof b64);
    return text;
}

DomainKey parse_domain_key(std::string_view text, const std::string& path) {
    ensure_sodium();
    auto bad = [&](const std::string& what) {
        throw Error(errc::invalid_argument, "domain key file " + path + ": " + what);
    };
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        const auto end = text.find('\n');
        const auto line = trim(text.substr(0, end));
        if (!line.empty() && line.front() != '#') {
            lines.push_back(line);
        }
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    }
    if (lines.empty() || lines.front() != domain_key_header) {
        bad("not a meshy domain key (its first line must be '" + std::string(domain_key_header) +
            "'; make one with `meshy key generate`)");
    }
    if (lines.size() != 2) {
        bad("expected one base64 line after the header, found " + std::to_string(lines.size() - 1));
    }
    DomainKey key;
    std::size_t decoded = 0;
    const char* end = nullptr;
    if (sodium_base642bin(key.bytes.data(), key.bytes.size(), lines[1].data(), lines[1].size(), nullptr, &decoded, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        decoded != key.bytes.size() || end != lines[1].data() + lines[1].size()) {
        sodium_memzero(key.bytes.data(), key.bytes.size());
        bad("the key line is not 32 bytes in base64");
    }
    return key;
}

DomainKey load_domain_key(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw Error(errc::invalid_argument, "cannot open domain key file " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(errc::invalid_argument, "domain key file " + path + " is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        ::close(fd);
        throw Error(errc::invalid_argument, "domain key file " + path + " is open to group or others (mode " +
                                                octal_mode(st.st_mode) + "); run: chmod 600 " + path);
    }
    std::string text(max_key_file + 1, '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            throw Error(errc::invalid_argument, "cannot read domain key file " + path + ": " + std::strerror(err));
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got > max_key_file) {
        throw Error(errc::invalid_argument, "domain key file " + path + " is too large to be a key");
    }
    text.resize(got);
    auto key = parse_domain_key(text, path);
    sodium_memzero(text.data(), text.size());
    return key;
}

}  // namespace meshy::detail

namespace meshy {

std::string generate_domain_key_text() {
    auto key = detail::generate_domain_key();
    auto text = detail::format_domain_key(key);
    sodium_memzero(key.bytes.data(), key.bytes.size());
    return text;
}

void check_domain_key_file(const std::string& path) {
    auto key = detail::load_domain_key(path);
    sodium_memzero(key.bytes.data(), key.bytes.size());
}

}  // namespace meshy
