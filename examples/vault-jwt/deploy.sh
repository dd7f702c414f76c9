#!/bin/sh
# The deploy step of the example: uses what Vault gave it (file delivery) and shows names and
# sizes, never a value. It runs a little longer than two thirds of the database lease's TTL,
# so secrets-run renews the lease once while it runs.
set -eu
file=""
for name in API_KEY DB_USERNAME DB_PASSWORD; do
  eval "file=\${${name}_FILE}"
  printf 'deploy: %s_FILE is %s (%s bytes)\n' "$name" "$file" "$(wc -c < "$file")"
done
echo "deploy: VAULT_ID_TOKEN is ${VAULT_ID_TOKEN:+in my environment (a bug)}${VAULT_ID_TOKEN:-not in my environment}"
sleep "${DEPLOY_SECONDS:-2.5}"
echo "deploy: done"
