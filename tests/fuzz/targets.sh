# shellcheck shell=bash
# The libFuzzer targets (tests/fuzz/<name>_fuzz.cpp, corpus in tests/fuzz/corpus/<name>), sourced by
# .ci/run and scripts/fuzz-long.sh so that both fuzz the same targets with the same input bounds.
# FUZZ_CAP: seconds a target may run in CI before reaching its execution budget; the caps of the
# slow parsers are larger (CI runs two targets at once, one a core). FUZZ_MAX_LEN: the input bound
# (-max_len); larger inputs only slow the search down.
# shellcheck disable=SC2034 # used by the scripts that source this file
FUZZ_TARGETS=(frame ws mcap rosbridge values args launch advert rest foxglove secure_handshake shm_ring shm_loan)
# Each cap is the time to 3,000,000 executions at the rate measured over a whole run of that many
# (docs/reliability.md) plus a quarter.
# shellcheck disable=SC2034
declare -A FUZZ_CAP=([frame]=30 [ws]=30 [mcap]=110 [rosbridge]=335 [values]=115 [args]=500 [launch]=800
    [advert]=165 [rest]=20 [foxglove]=350 [secure_handshake]=50 [shm_ring]=75
    [shm_loan]=120)
# launch: 2 KiB holds a launch file of a dozen nodes (the seeds are at most 1.2 KiB); the YAML
# parser's time grows with the input.
# shellcheck disable=SC2034
declare -A FUZZ_MAX_LEN=([frame]=16384 [ws]=16384 [mcap]=65536 [rosbridge]=2048 [values]=2048 [args]=1024
    [launch]=2048 [advert]=4096 [rest]=4096 [foxglove]=4096 [secure_handshake]=16384 [shm_ring]=16384
    [shm_loan]=384)
