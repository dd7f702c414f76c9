#!/bin/sh
# The test step: a throwaway PostgreSQL cluster whose superuser password is $DB_PASSWORD_FILE
# (initdb --pwfile), listening on 127.0.0.1 and a unix socket in a private temporary directory,
# then the tests against it, then the cluster stopped and removed. PostgreSQL refuses to run
# as root: run this step as an ordinary user (see README.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

# Debian keeps the server programs off PATH, under /usr/lib/postgresql/VERSION/bin.
pgbin=$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '[*]' | sort -V | tail -n 1)
if [ -z "$pgbin" ]; then
  echo "step: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi

db=$(mktemp -d "${TMPDIR:-/tmp}/pg-example.XXXXXX")
cleanup() {
  "$pgbin/pg_ctl" -D "$db/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$db"
}
trap cleanup EXIT

# scram-sha-256 for every connection, the unix socket included: nothing gets in without the password.
"$pgbin/initdb" -D "$db/data" -U app --pwfile="$DB_PASSWORD_FILE" --auth=scram-sha-256 \
  -E UTF8 --no-sync >"$db/initdb.log" 2>&1 || { cat "$db/initdb.log" >&2; exit 1; }

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$pgbin/pg_ctl" -D "$db/data" -l "$db/server.log" -w -s \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $db -c fsync=off" start \
  || { cat "$db/server.log" >&2; exit 1; }
echo "step: PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port and $db, user app"

export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=app PGDATABASE=postgres PGSOCKETDIR="$db"
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider "$here/test_db.py"

"$pgbin/pg_ctl" -D "$db/data" -m fast -s stop
echo "step: PostgreSQL stopped"
