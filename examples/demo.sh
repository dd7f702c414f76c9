#!/bin/sh
# Builds secrets-run and runs the demo step with the demo manifest: the quick start's
# first command. The store, its key and the stored value are made here, in a temporary
# directory that is removed at the end; nothing is written to your ~/.config.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build >/dev/null
BIN=$PWD/build/agent/secrets-run

DEMO=$(mktemp -d)
trap 'rm -rf "$DEMO"' EXIT
export XDG_CONFIG_HOME="$DEMO/config"      # store init puts the key here (0600, in a 0700 dir)
cp examples/secrets.yaml "$DEMO/secrets.yaml"
MANIFEST=$DEMO/secrets.yaml                # its file backend: $DEMO/.secrets-run/store

echo "== secrets-run check"
"$BIN" check -f "$MANIFEST" 2>&1

echo
echo "== secrets-run store init / set / list"
"$BIN" store init -f "$MANIFEST"
# a stand-in token, generated here and piped in: a value never goes on a command line
head -c 24 /dev/urandom | base64 | tr -d '/+=' | "$BIN" store set PAYMENTS_API_TOKEN -f "$MANIFEST"
"$BIN" store list -f "$MANIFEST"

echo
echo "== secrets-run --dry-run (what would be delivered, nothing runs)"
"$BIN" -f "$MANIFEST" --dry-run

echo
echo "== secrets-run ./examples/step.sh"
status=0
"$BIN" -f "$MANIFEST" ./examples/step.sh || status=$?
echo
echo "== the step exited $status; secrets directories left behind: $(find /dev/shm/secrets-run-"$(id -u)" -mindepth 1 2>/dev/null | wc -l)"
exit "$status"
