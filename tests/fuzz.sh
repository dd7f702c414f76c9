#!/usr/bin/env bash
# Builds the libFuzzer target tests/fuzz_redact.c (streaming matcher vs the naive reference,
# under ASan+UBSan) into build-fuzz/ with clang, and fuzzes it for SECONDS (default 20),
# starting from tests/fuzz-corpus/ (saved failing cases, kept) and a scratch corpus in
# build-fuzz/. Writes build-fuzz/fuzz.tap ("ok 1 - ..." or "not ok 1 - ...") for tests/tally.py.
# Exits non-zero if the build fails or the fuzzer finds a crash or difference; the input
# that did it is left in build-fuzz/ (crash-*), to be copied into tests/fuzz-corpus/.
#
# Usage: tests/fuzz.sh [SECONDS]
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

seconds=${1:-20}
out=build-fuzz
exe=$out/fuzz_redact
tap=$out/fuzz.tap
mkdir -p "$out/corpus"
rm -f "$tap"

result() {   # STATUS DESCRIPTION
        { echo "1..1"; [ "$1" -eq 0 ] && echo "ok 1 - $2" || echo "not ok 1 - $2"; } >"$tap"
        exit "$1"
}

CC=${CC:-clang}
if ! command -v "$CC" >/dev/null; then
        echo "fuzz.sh: $CC not found (packaging/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
        result 1 "fuzz_redact: no clang"
fi
echo "==> fuzz.sh: building $exe"
# shellcheck disable=SC2046
if ! "$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -D_GNU_SOURCE -std=gnu17 -Icommon -Iredact -Itests \
        common/*.c redact/*.c tests/redact_reference.c tests/fuzz_redact.c -lsodium -larchive -o "$exe"; then
        result 1 "fuzz_redact: build failed"
fi

seeds=()
[ -d tests/fuzz-corpus ] && seeds+=(tests/fuzz-corpus)
echo "==> fuzz.sh: fuzzing for ${seconds}s"
# corpus dirs: the first one receives new inputs; the saved cases are read only
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
        "$exe" -max_len=2048 -timeout=10 -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$out/" "$out/corpus" "${seeds[@]}" > "$out/fuzz.log" 2>&1
status=$?
# libFuzzer reports every new input; the log keeps that, the CI output gets the summary
grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' "$out/fuzz.log" || true
if [ "$status" -ne 0 ]; then
        tail -n 40 "$out/fuzz.log" >&2
        echo "==> fuzz.sh: FAILED (status $status); reproduce with: $exe $out/crash-*" >&2
        result 1 "fuzz_redact ${seconds}s (status $status)"
fi
result 0 "fuzz_redact ${seconds}s"
