#!/bin/sh
# Runs the Vault JWT pipeline of secrets.yaml the way examples/gitlab-ci.yml's deploy job would,
# against the Vault test double (integration/vault_server.py --serve: HTTPS on 127.0.0.1 with
# a throwaway CA, a JWT role `ci` bound to audience and ref=main, KV v2 and database roles).
# The job's ID token goes where GitLab's `id_tokens: VAULT_ID_TOKEN` puts it; the GitLab
# variables give the CI context (a push to main). Afterwards the double's counts show the
# login token and the database lease were revoked. Exits non-zero if any of that fails.
#
# Usage: examples/vault-jwt/run.sh     (SECRETS_RUN_BIN=PATH to use another binary)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=examples/find-secrets-run.sh
. "$here/../find-secrets-run.sh"      # sets BIN

work=$(mktemp -d "${TMPDIR:-/tmp}/secrets-run-vault-jwt.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== start the Vault test double"
state=$work/vault-state
/usr/bin/python3 "$root/integration/vault_server.py" --serve --state-dir "$state" \
  --role ci --audience https://vault.example.com --claim ref=main \
  --kv2 'ci/app#api_key' --db-role app --db-ttl 3 &
server=$!
i=0
until [ -f "$state/ready" ]; do
  i=$((i + 1))
  if [ "$i" -gt 100 ] || ! kill -0 "$server" 2>/dev/null; then
    echo "run.sh: the Vault test double did not start" >&2
    exit 1
  fi
  sleep 0.1
done
echo "Vault at $(cat "$state/addr")"

# What the GitLab runner gives the deploy job: its variables and the ID token.
export GITLAB_CI=true CI=true CI_COMMIT_BRANCH=main CI_PIPELINE_SOURCE=push \
  CI_PROJECT_PATH=example/app CI_PIPELINE_ID=1 GITLAB_USER_LOGIN=alice
VAULT_ADDR=$(cat "$state/addr")
VAULT_CACERT=$state/ca.pem       # the test double's throwaway CA, as Vault's own CLI reads it
VAULT_ID_TOKEN=$(cat "$state/jwt")
export VAULT_ADDR VAULT_CACERT VAULT_ID_TOKEN
cd "$work"

echo
echo "== secrets-run check"
"$BIN" check -f "$here/secrets.yaml"

echo
echo "== a merge-request pipeline: nothing of prod is in scope (--dry-run)"
CI_PIPELINE_SOURCE=merge_request_event "$BIN" -f "$here/secrets.yaml" --dry-run

echo
echo "== secrets-run $here/deploy.sh"
"$BIN" -f "$here/secrets.yaml" --audit-log "$work/audit.jsonl" -- "$here/deploy.sh"

echo
echo "== the audit log"
"$BIN" audit verify "$work/audit.jsonl"

echo
echo "== what the Vault test double saw"
kill "$server"
wait "$server" || true
server=""
/usr/bin/python3 - "$state/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(", ".join(f"{k} {v}" for k, v in s.items()))
want = [("one JWT login", s["logins"] == 1),
        ("the login token revoked at exit", s["login_tokens_revoked"] == s["logins"]),
        ("one database lease for both fields", s["leases_issued"] == 1),
        ("the lease renewed while the step ran", s["leases_renewed"] >= 1),
        ("the lease revoked at exit", s["leases_revoked"] == s["leases_issued"])]
for what, ok in want:
    print(("ok: " if ok else "NOT OK: ") + what)
sys.exit(0 if all(ok for _, ok in want) else 1)
PY
