#!/bin/sh
# A demo CI step: uses its secrets the way real tools do (files, fds) and shows what it
# was given -- names, sizes and permissions, never the values.
set -eu
echo "step: SECRETS_DIR=$SECRETS_DIR"
ls -l "$SECRETS_DIR"
printf 'step: PAYMENTS_API_TOKEN_FILE has %s bytes\n' "$(wc -c < "$PAYMENTS_API_TOKEN_FILE")"
printf 'step: TEST_DB_PASSWORD_FILE has %s bytes\n' "$(wc -c < "$TEST_DB_PASSWORD_FILE")"
printf 'step: SIGNING_KEY on fd %s has %s bytes\n' "$SIGNING_KEY_FD" "$(wc -c <&"$SIGNING_KEY_FD")"
echo "step: SECRETS_RUN_STORE_KEY is ${SECRETS_RUN_STORE_KEY:+in my environment (a bug)}${SECRETS_RUN_STORE_KEY:-not in my environment}"
echo "step: DEPLOY_TOKEN_FILE is ${DEPLOY_TOKEN_FILE:-not set (prod only)}"
