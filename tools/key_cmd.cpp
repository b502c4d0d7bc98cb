// `meshy key generate`: a new domain key (docs/security.md).
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <meshy/domain_key.hpp>

#include "cli.hpp"

namespace meshy::cli {
namespace {

void run_key_generate() {
    // `meshy key generate > lab.key`: the shell made the file with its umask (usually 0644); a
    // node refuses a key others may read, so the file is made private here, before a byte of the
    // key is in it.
    struct stat st {};
    if (::fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0 &&
        ::fchmod(STDOUT_FILENO, st.st_mode & 0700) != 0) {
        throw CliError("cannot make the key file private (chmod 600 it, then run again)", exit_failure);
    }
    const std::string text = generate_domain_key_text();
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
        throw CliError("cannot write the key", exit_failure);
    }
}

}  // namespace

void setup_key(CLI::App& app, const GlobalOptions& globals) {
    (void)globals;
    auto* key = app.add_subcommand("key", "Domain keys: authenticate every node and encrypt every link");
    key->require_subcommand(1);
    auto* generate = key->add_subcommand(
        "generate", "Print a new domain key (meshy key generate > lab.key; the file is made mode 0600)");
    generate->callback([] { run_key_generate(); });
}

}  // namespace meshy::cli
