#!/bin/sh
# Runs the project's test step under secrets-run, as CI would: the token is a CI secret
# variable (EXAMPLE_API_TOKEN; generated here if unset), the payments API is a local stub that
# knows the same token. Then the same tests with the client's debug dump on: the token is
# masked in the output and the step fails with 123. Exits non-zero if either run does not end
# as expected.
#
# Usage: examples/python-project/run.sh     (SECRETS_RUN_BIN=PATH to use another binary)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=examples/find-secrets-run.sh
. "$here/../find-secrets-run.sh"      # sets BIN

work=$(mktemp -d "${TMPDIR:-/tmp}/secrets-run-python.XXXXXX")
stub=""
cleanup() {
  if [ -n "$stub" ]; then kill "$stub" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The CI secret variable. A stand-in value is made here; a value never goes on a command line.
if [ -z "${EXAMPLE_API_TOKEN:-}" ]; then
  EXAMPLE_API_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
fi
export EXAMPLE_API_TOKEN
(umask 077 && printf '%s\n' "$EXAMPLE_API_TOKEN" > "$work/token")

/usr/bin/python3 "$here/stub_api.py" "$work/token" "$work/port" &
stub=$!
i=0
until [ -f "$work/port" ]; do
  i=$((i + 1))
  if [ "$i" -gt 100 ] || ! kill -0 "$stub" 2>/dev/null; then
    echo "run.sh: the payments API stub did not start" >&2
    exit 1
  fi
  sleep 0.05
done
PAYMENTS_API_URL="http://127.0.0.1:$(cat "$work/port")"
export PAYMENTS_API_URL
export PYTHONDONTWRITEBYTECODE=1      # no __pycache__ in the example's directory
cd "$here"                            # secrets.yaml is found in the working directory

echo "== secrets-run -e dev -s test -- /usr/bin/python3 -m pytest"
"$BIN" -e dev -s test -- /usr/bin/python3 -m pytest -q -p no:cacheprovider tests

echo
echo "== the same with PAYMENTS_DEBUG=1 (the client prints its request headers)"
status=0
PAYMENTS_DEBUG=1 "$BIN" -e dev -s test -- \
  /usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests > "$work/leak.out" 2>&1 || status=$?
cat "$work/leak.out"
echo "== the step exited $status"
if [ "$status" -ne 123 ] || ! grep -qF '[REDACTED:API_TOKEN]' "$work/leak.out"; then
  echo "run.sh: expected the token masked as [REDACTED:API_TOKEN] and status 123" >&2
  exit 1
fi
