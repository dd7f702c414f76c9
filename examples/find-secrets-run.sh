# shellcheck shell=sh
# Sourced by the examples' run.sh scripts: sets BIN to the secrets-run to use, which is
# $SECRETS_RUN_BIN when set (CI points it at the binary under test), else this checkout's
# build/agent/secrets-run, configured and built first if need be. Installed elsewhere, an
# example would simply use `secrets-run` from PATH.
_root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${SECRETS_RUN_BIN:-}" ]; then
  [ -f "$_root/build/build.ninja" ] || meson setup "$_root/build" >/dev/null
  ninja -C "$_root/build" >/dev/null
  SECRETS_RUN_BIN=$_root/build/agent/secrets-run
fi
# shellcheck disable=SC2034  # BIN is for the script that sources this file
BIN=$SECRETS_RUN_BIN
