"""The database test: connects to the throwaway cluster with the password secrets-run
generated for this run (read from $DB_PASSWORD_FILE), over TCP and over the unix socket, and
checks that a wrong password is refused."""

import os

import psycopg2
import pytest


def password():
    with open(os.environ["DB_PASSWORD_FILE"], encoding="utf-8") as f:
        return f.read()


def connect(host, pw):
    return psycopg2.connect(host=host, port=os.environ["PGPORT"], user=os.environ["PGUSER"],
                            dbname=os.environ["PGDATABASE"], password=pw, connect_timeout=10)


@pytest.mark.parametrize("host", [os.environ.get("PGHOST"), os.environ.get("PGSOCKETDIR")],
                         ids=["tcp", "unix-socket"])
def test_connect_with_the_generated_password(host):
    with connect(host, password()) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE orders (id serial PRIMARY KEY, total integer)")
        cur.execute("INSERT INTO orders (total) VALUES (1200), (3000) RETURNING id")
        cur.execute("SELECT sum(total) FROM orders")
        assert cur.fetchone()[0] == 4200
        conn.rollback()
    conn.close()


def test_password_is_the_generated_one():
    pw = password()
    assert len(pw) == 32 and pw.isalnum()


def test_wrong_password_is_refused():
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        connect(os.environ["PGHOST"], "not-the-generated-password")
