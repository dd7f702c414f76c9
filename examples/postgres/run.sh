#!/bin/sh
# Runs the database-backed test step (step.sh) under secrets-run with a password generated for
# this run. PostgreSQL refuses to run as root, so when this script is run as root (a CI
# container, this repository's CI) it runs secrets-run as the unprivileged user nobody
# (uid 65534) with setpriv, from a copy of the example in a temporary directory that user owns;
# as any other user it runs the step directly. Exits with the step's status.
#
# Usage: examples/postgres/run.sh     (SECRETS_RUN_BIN=PATH to use another binary)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=examples/find-secrets-run.sh
. "$here/../find-secrets-run.sh"      # sets BIN

work=$(mktemp -d "${TMPDIR:-/tmp}/secrets-run-postgres.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir "$work/project" "$work/home"
cp "$here/secrets.yaml" "$here/step.sh" "$here/test_db.py" "$work/project/"

as_user=""
if [ "$(id -u)" -eq 0 ]; then
  # The user's own home and state (the audit log goes to $XDG_STATE_HOME), none of root's
  # per-user directories.
  as_user="setpriv --reuid=65534 --regid=65534 --clear-groups -- env -u XDG_RUNTIME_DIR
    HOME=$work/home XDG_STATE_HOME=$work/home/.local/state XDG_CONFIG_HOME=$work/home/.config"
  chmod 755 "$work"
  chown -R 65534:65534 "$work/project" "$work/home"
  # The binary must be reachable by that user; a checkout under a private directory is not.
  if ! $as_user "$BIN" --version >/dev/null 2>&1; then
    cp "$BIN" "$work/secrets-run"
    chmod 755 "$work/secrets-run"
    BIN=$work/secrets-run
  fi
  echo "== running as uid 65534 (nobody): PostgreSQL does not run as root"
fi

cd "$work/project"
echo "== secrets-run -e dev -s test -- ./step.sh"
# shellcheck disable=SC2086   # $as_user is a command prefix, split on purpose
TMPDIR=/tmp $as_user "$BIN" -e dev -s test -- ./step.sh
