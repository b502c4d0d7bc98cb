// libFuzzer target: the CLI's YAML/JSON argument parsing (`meshy topic send`, `service call`,
// tools/values.cpp parse_args): words from a user, a script or a launch file become a msgpack
// payload. The input is split into at most four words at '\0' (the fourth takes the rest, '\0's
// and all); a bad word must be a CliError, nothing else.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    // Every word is a YAML document of its own, and a parser's set-up and teardown cost more than
    // parsing a short word: inputs the mutator grows to dozens of words ran that many parsers. Four
    // reach every rule between words (positional after keyword, one budget for the whole message).
    constexpr std::size_t max_words = 4;
    std::vector<std::string> words;
    for (std::size_t start = 0; start <= in.size();) {
        const std::size_t end = words.size() + 1 == max_words ? in.size() : std::min(in.find('\0', start), in.size());
        words.emplace_back(in.substr(start, end - start));
        start = end + 1;
    }
    try {
        // A smaller expansion budget than the CLI's: an alias bomb still reaches the limit, in a
        // hundredth of the time, so the search spends its executions on the parser.
        const meshy::cli::ParsedArgs parsed = meshy::cli::parse_args(words, 1000);
        // What was packed must read back as text (as `meshy topic echo` would show it).
        const std::span<const std::byte> payload(parsed.payload.data(), parsed.payload.size());
        (void)meshy::cli::payload_text(meshy::CodecId::msgpack, payload, true);
    } catch (const meshy::cli::CliError&) {
        // A usage error the CLI prints in one line.
    }
    return 0;
}
