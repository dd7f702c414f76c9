#!/usr/bin/env bash
# Builds secrets-run and runs every test, the way CI and the README do: a -Werror build with the
# unit and integration tests, an ASan+UBSan build with the same tests, 20 s of fuzzing the
# matcher (tests/fuzz.sh, one test), the Debian package built, installed into a throwaway root
# and checked (tests/deb.sh, twelve tests, lintian included), then a tally whose last line is "N passed, N failed[, N
# skipped]". Exits non-zero if any step or test failed; a failing step does not stop the rest,
# so the tally always prints.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

PYTHON=/usr/bin/python3            # Debian's, which has pytest (tests/tally.py needs only stdlib)
CI_DIR=build-ci
ASAN_DIR=build-asan

failed_steps=()
failed_test_builds=()

# step NAME CMD...: runs CMD, records NAME if it fails.
step() {
        local name=$1
        shift
        echo "==> $name"
        if "$@"; then
                return 0
        fi
        echo "==> $name: FAILED" >&2
        failed_steps+=("$name")
        return 1
}

# setup DIR OPTION...: configures DIR, reconfiguring an existing build directory with these
# options, or wiping one that cannot be reconfigured.
# shellcheck disable=SC2317  # reached through step(), which shellcheck does not follow
setup() {
        local dir=$1
        shift
        if [ -f "$dir/meson-private/coredata.dat" ] &&
                meson setup --reconfigure "$dir" "$@"; then
                return 0
        fi
        rm -rf "$dir"
        meson setup "$dir" "$@"
}

# run_tests DIR ARGS...: `meson test` with a fresh log, so the tally never reads a stale one.
run_tests() {
        local dir=$1
        shift
        rm -f "$dir/meson-logs/testlog.json" "$dir/integration/integration.xml"
        echo "==> test $dir"
        if ! meson test -C "$dir" --print-errorlogs "$@"; then
                echo "==> test $dir: FAILED" >&2
                failed_test_builds+=("$dir")
        fi
}

start=$(date +%s)

# (a) warnings as errors; unit and integration tests.
if step "setup $CI_DIR" setup "$CI_DIR" -Dwerror=true --buildtype=debugoptimized \
                -Db_sanitize=none -Dintegration=true &&
        step "build $CI_DIR" ninja -C "$CI_DIR"; then
        run_tests "$CI_DIR"
fi

# (b) AddressSanitizer + UndefinedBehaviorSanitizer, unit and integration tests.
if step "setup $ASAN_DIR" setup "$ASAN_DIR" -Db_sanitize=address,undefined -Db_lundef=false \
                -Dintegration=true &&
        step "build $ASAN_DIR" ninja -C "$ASAN_DIR"; then
        # the unit tests, and the end-to-end tests against the sanitized binary: a memory
        # error anywhere on the paths a user takes aborts the run it happens in
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 run_tests "$ASAN_DIR"
fi

# (c) the matcher fuzzed against the naive reference for 20 s (clang, libFuzzer, ASan+UBSan).
# Not a step(): it writes its result to FUZZ_TAP, which the tally counts as one test
# (a missing file counts as a failure), so a failure is counted exactly once.
FUZZ_TAP=build-fuzz/fuzz.tap
echo "==> fuzz"
tests/fuzz.sh 20 || echo "==> fuzz: FAILED" >&2

# (d) the Debian package: dpkg-buildpackage from a clean copy of the tree, then its contents,
# dependencies, an install into a throwaway root and the installed files at work
# (tests/deb.sh, about 15 s; docs/packaging.md). Like the fuzz run, its tests are read from
# DEB_TAP by the tally.
DEB_TAP=build-deb/deb.tap
echo "==> deb"
tests/deb.sh || echo "==> deb: FAILED" >&2

echo "==> done in $(( $(date +%s) - start )) s"

# (e) the tally; its last line is the summary.
tally_args=()
for s in "${failed_steps[@]}"; do
        tally_args+=(--failed-step "$s")
done
for d in "${failed_test_builds[@]}"; do
        tally_args+=(--failed-test-step "$d")
done
"$PYTHON" tests/tally.py "${tally_args[@]}" --tap "$FUZZ_TAP" --tap "$DEB_TAP" "$CI_DIR" "$ASAN_DIR"
tally_status=$?

if [ "$tally_status" -ne 0 ] || [ "${#failed_steps[@]}" -ne 0 ] ||
        [ "${#failed_test_builds[@]}" -ne 0 ]; then
        exit 1
fi
exit 0
