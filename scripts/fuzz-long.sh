#!/usr/bin/env bash
# Long libFuzzer runs (hours) with a persistent corpus, and the corpus minimised back into the repo.
#
# Usage: scripts/fuzz-long.sh [--hours H] [--jobs J] [--corpus-dir DIR] [--merge-back] [TARGET...]
#   TARGET        a name from tests/fuzz/targets.sh (default: all of them)
#   --hours H     time per target (default 1; fractions allowed, e.g. 0.25)
#   --jobs J      libFuzzer workers per target (default 1; -fork=J)
#   --corpus-dir  where the grown corpora live between runs (default ~/.cache/meshy-fuzz/<target>);
#                 each run starts from it plus tests/fuzz/corpus/<target>
#   --merge-back  afterwards, add to tests/fuzz/corpus/<target> the grown inputs that cover something
#                 new (libFuzzer -merge=1, a minimal set), for CI to replay; commit the result
# Crashes are written to <corpus-dir>/../artifacts-<target>/ and make the script exit non-zero.
# Builds the targets with clang in build-fuzz (-DMESHY_FUZZ=ON), as .ci/run does.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"
HOURS=1
JOBS=1
CORPUS_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/meshy-fuzz"
MERGE_BACK=0
TARGETS=()
while (($#)); do
    case $1 in
        --hours) HOURS=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --corpus-dir) CORPUS_BASE=$2; shift 2 ;;
        --merge-back) MERGE_BACK=1; shift ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
# The targets and their input bounds, as CI has them.
# shellcheck disable=SC1091 # a path from the repository root
source tests/fuzz/targets.sh
((${#TARGETS[@]})) || TARGETS=("${FUZZ_TARGETS[@]}")
SECONDS_PER_TARGET=$(awk -v h="$HOURS" 'BEGIN { s = int(h * 3600); if (s < 10) s = 10; print s }')

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja \
    -DMESHY_FUZZ=ON -DMESHY_BUILD_TESTS=OFF -DMESHY_BUILD_EXAMPLES=OFF -DMESHY_BUILD_TOOLS=OFF >/dev/null
rc=0
for name in "${TARGETS[@]}"; do
    cmake --build build-fuzz --target "fuzz_$name"
    FUZZER=$(find build-fuzz -type f -name "fuzz_$name" -perm -u+x | head -n1)
    CORPUS="$CORPUS_BASE/$name"
    ARTIFACTS="$CORPUS_BASE/artifacts-$name"
    mkdir -p "$CORPUS" "$ARTIFACTS"
    echo "== fuzz_$name: ${SECONDS_PER_TARGET} s, $JOBS job(s), corpus $CORPUS ($(find "$CORPUS" -type f | wc -l) files)"
    fuzz_rc=0
    "$FUZZER" -max_total_time="$SECONDS_PER_TARGET" -fork="$JOBS" -ignore_crashes=0 -timeout=10 \
        -rss_limit_mb=2048 -max_len="${FUZZ_MAX_LEN[$name]}" -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/" "$CORPUS" "tests/fuzz/corpus/$name" </dev/null || fuzz_rc=$?
    if ((fuzz_rc != 0)); then
        echo "fuzz_$name failed (exit $fuzz_rc); reproducers in $ARTIFACTS" >&2
        rc=$fuzz_rc
        continue
    fi
    if ((MERGE_BACK)); then
        # -merge=1 adds to the committed corpus only the grown inputs that cover something it does not
        # (the named seeds stay as they are).
        before=$(find "tests/fuzz/corpus/$name" -type f | wc -l)
        "$FUZZER" -merge=1 -max_len="${FUZZ_MAX_LEN[$name]}" "tests/fuzz/corpus/$name" "$CORPUS" </dev/null
        echo "fuzz_$name: tests/fuzz/corpus/$name $before -> $(find "tests/fuzz/corpus/$name" -type f | wc -l) files"
    fi
done
exit "$rc"
