#!/bin/sh
# Builds secrets-run and runs the demo step with the demo manifest: the quick start's
# first command. A stand-in CI variable is generated here, never stored.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build >/dev/null
BIN=build/agent/secrets-run

echo "== secrets-run check"
"$BIN" check -f examples/secrets.yaml 2>&1

echo
echo "== secrets-run --dry-run (what would be delivered, nothing runs)"
DEMO_PAYMENTS_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=') \
  "$BIN" -f examples/secrets.yaml --dry-run

echo
echo "== secrets-run ./examples/step.sh"
status=0
DEMO_PAYMENTS_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=') \
  "$BIN" -f examples/secrets.yaml ./examples/step.sh || status=$?
echo
echo "== the step exited $status; secrets directories left behind: $(find /dev/shm/secrets-run-"$(id -u)" -mindepth 1 2>/dev/null | wc -l)"
exit "$status"
