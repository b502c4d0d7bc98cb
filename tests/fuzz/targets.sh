# shellcheck shell=bash
# The libFuzzer targets (tests/fuzz/<name>_fuzz.cpp, corpus in tests/fuzz/corpus/<name>), sourced by
# .ci/run and scripts/fuzz-long.sh so that both fuzz the same targets with the same input bounds.
# FUZZ_CAP: seconds a target may run in CI before reaching its execution budget; the caps of the
# slow parsers are larger (CI runs two targets at once, one a core). FUZZ_MAX_LEN: the input bound
# (-max_len); larger inputs only slow the search down.
# shellcheck disable=SC2034 # used by the scripts that source this file
FUZZ_TARGETS=(frame ws mcap rosbridge values args launch advert rest foxglove secure_handshake shm_ring)
# shellcheck disable=SC2034
declare -A FUZZ_CAP=([frame]=40 [ws]=40 [mcap]=100 [rosbridge]=120 [values]=90 [args]=120 [launch]=120
    [advert]=50 [rest]=50 [foxglove]=120 [secure_handshake]=120 [shm_ring]=30)
# shellcheck disable=SC2034
declare -A FUZZ_MAX_LEN=([frame]=16384 [ws]=16384 [mcap]=65536 [rosbridge]=2048 [values]=2048 [args]=1024
    [launch]=4096 [advert]=4096 [rest]=4096 [foxglove]=4096 [secure_handshake]=16384 [shm_ring]=16384)
