"""The embedded encrypted store end to end: `secrets-run store` sub-commands, the `file`
backend in a run, errors that leave the file untouched, concurrent writers and writers killed
mid-write. Values are generated here and compared through files; `get` writes to a file in
data/, never to captured output."""

import base64
import hashlib
import json
import os
import random
import secrets
import subprocess
import threading
import time

import pytest


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digest(value):
    """What assertions compare, so a failing one prints hashes, never a value."""
    if isinstance(value, str):
        value = value.encode()
    return hashlib.sha256(value).hexdigest()[:16]


class Store:
    """A store at proj/.secrets-run/store with its key in the test's $XDG_CONFIG_HOME."""

    def __init__(self, proj):
        self.proj = proj
        self.path = proj.dir / ".secrets-run" / "store"
        self.key_file = proj.base / "config" / "secrets-run" / "store.key"
        self._n = 0

    def run(self, *args, **kw):
        return self.proj.run("store", *args, "--store", self.path, **kw)

    def init(self):
        r = self.run("init")
        assert r.status == 0, r
        return r

    def set(self, name, value, **kw):
        return self.run("set", name, input=value, **kw)

    def get(self, name, env=None):
        """Runs `store get NAME` with stdout to a data file; returns (status, bytes, stderr)."""
        self._n += 1
        out = self.proj.data / f"got-{self._n}"
        with open(out, "wb") as f:
            p = subprocess.run([str(self.proj.bin), "store", "get", name, "--store", str(self.path)],
                               cwd=str(self.proj.dir), env=self.proj._env(env), stdin=subprocess.DEVNULL,
                               stdout=f, stderr=subprocess.PIPE, timeout=60)
        self.proj.outputs.append((b"", p.stderr))
        data = out.read_bytes()
        out.unlink()
        return p.returncode, data, p.stderr.decode("utf-8", "surrogateescape")


@pytest.fixture
def store(proj):
    return Store(proj)


def test_init_creates_private_key_and_store_and_refuses_to_overwrite(proj, store):
    r = store.init()
    assert store.key_file.is_file() and store.path.is_file()
    assert (store.key_file.stat().st_mode & 0o777) == 0o600
    assert (store.key_file.parent.stat().st_mode & 0o777) == 0o700
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert store.path.read_bytes()[:8] == b"SRSTORE\0"
    assert len(base64.b64decode(store.key_file.read_text().strip())) == 32
    before = sha256(store.path)
    r = store.run("init")
    assert r.status == 1 and "already exists; not overwriting" in r.stderr, r
    assert sha256(store.path) == before


def test_set_get_list_history_rollback_rm(proj, store):
    store.init()
    v1, v2, v3 = proj.secret(), proj.secret(), proj.secret()
    for v in (v1, v2, v3):
        r = store.set("API_TOKEN", v + "\n")   # one trailing newline is dropped
        assert r.status == 0, r
    assert store.set("DB_PASSWORD", proj.secret()).status == 0
    status, got, err = store.get("API_TOKEN")
    assert status == 0 and digest(got) == digest(v3), err

    r = store.run("list", "--format", "json")
    assert r.status == 0, r
    listed = {e["name"]: e for e in json.loads(r.stdout)}
    assert set(listed) == {"API_TOKEN", "DB_PASSWORD"}
    assert listed["API_TOKEN"]["versions"] == 3 and listed["API_TOKEN"]["latest"] == 3
    assert abs(listed["API_TOKEN"]["created_unix"] - time.time()) < 120
    r = store.run("list")
    assert r.status == 0 and "API_TOKEN" in r.stdout and "DB_PASSWORD" in r.stdout, r

    r = store.run("history", "API_TOKEN", "--format", "json")
    assert [e["version"] for e in json.loads(r.stdout)] == [3, 2, 1]

    r = store.run("rollback", "API_TOKEN")          # the previous one: 2
    assert r.status == 0, r
    assert digest(store.get("API_TOKEN")[1]) == digest(v2)
    r = store.run("rollback", "API_TOKEN", "--to", "1")
    assert r.status == 0, r
    assert digest(store.get("API_TOKEN")[1]) == digest(v1)
    r = store.run("history", "API_TOKEN", "--format", "json")
    assert [e["version"] for e in json.loads(r.stdout)] == [5, 4, 3, 2, 1]
    r = store.run("rollback", "API_TOKEN", "--to", "9")
    assert r.status == 1 and "no version 9" in r.stderr, r

    assert store.run("rm", "API_TOKEN").status == 0
    status, got, err = store.get("API_TOKEN")
    assert status == 1 and got == b"" and "no 'API_TOKEN' in store" in err
    r = store.run("list", "--format", "json")
    assert [e["name"] for e in json.loads(r.stdout)] == ["DB_PASSWORD"]


def test_binary_values_keep_their_bytes(proj, store):
    store.init()
    value = secrets.token_bytes(4096) + b"\0\0tail"   # NULs inside, no trailing newline
    assert store.set("BLOB", value).status == 0
    assert digest(store.get("BLOB")[1]) == digest(value)
    big = secrets.token_bytes(1024 * 1024 + 1)
    r = store.set("BLOB", big)
    assert r.status == 1 and "larger than" in r.stderr, r


def test_keeps_last_ten_versions(proj, store):
    store.init()
    for _ in range(13):
        assert store.set("ROTATED", proj.secret()).status == 0
    r = store.run("history", "ROTATED", "--format", "json")
    assert [e["version"] for e in json.loads(r.stdout)] == list(range(13, 3, -1))


def test_run_delivers_a_value_from_the_store(proj, store):
    store.init()
    value = proj.secret()
    expected = proj.expect(value)
    assert store.set("PAYMENTS_TOKEN", value).status == 0
    assert store.set("OLD", proj.secret()).status == 0
    old = proj.secret()
    # version 2 of OLD is `old`; version 3 is something else
    assert store.set("OLD", old).status == 0
    assert store.set("OLD", proj.secret()).status == 0
    expected_old = proj.expect(old)
    proj.standard_manifest(
        backends="local: {type: file, path: .secrets-run/store}",
        secrets_block="""
            PAYMENTS_TOKEN: {from: "local:PAYMENTS_TOKEN", owner: team-a}
            PINNED: {from: "local:OLD?version=2", owner: team-a}
            """)
    step = proj.script(f"""
        report same "$(same "$PAYMENTS_TOKEN_FILE" '{expected}')"
        report pinned "$(same "$PINNED_FILE" '{expected_old}')"
        report key "${{SECRETS_RUN_STORE_KEY+set}}"
        """)
    key = store.key_file.read_text().strip()
    r = proj.run("run", "--", step, env={"SECRETS_RUN_STORE_KEY": key})
    assert r.status == 0, r
    rep = proj.report()
    assert rep == {"same": "yes", "pinned": "yes", "key": ""}

    # the sub-command finds the store through the manifest's file backend
    r = proj.run("store", "list", "--format", "json")
    assert r.status == 0 and {e["name"] for e in json.loads(r.stdout)} == {"PAYMENTS_TOKEN", "OLD"}, r


def test_run_missing_secret_and_wrong_key_are_backend_errors(proj, store):
    store.init()
    assert store.set("PRESENT", proj.secret()).status == 0
    proj.standard_manifest(
        backends="local: {type: file}",
        secrets_block='ABSENT: {from: "local:ABSENT", owner: team-a}')
    r = proj.run("run", "--", "true")
    assert r.status == 125 and "secret ABSENT: no 'ABSENT' in store" in r.stderr, r
    assert ".secrets-run/store" in r.stderr
    other = base64.b64encode(secrets.token_bytes(32)).decode()
    r = proj.run("run", "--", "true", env={"SECRETS_RUN_STORE_KEY": other})
    assert r.status == 125 and "cannot decrypt store (wrong key?)" in r.stderr, r


def _unchanged_after(store, action):
    before = sha256(store.path)
    r = action()
    assert r.status == 1, r
    assert sha256(store.path) == before, "a failed command changed the store file"
    return r


def test_errors_leave_the_file_unchanged(proj, store):
    store.init()
    assert store.set("KEPT", proj.secret()).status == 0

    other = base64.b64encode(secrets.token_bytes(32)).decode()
    r = _unchanged_after(store, lambda: store.set("KEPT", proj.secret(), env={"SECRETS_RUN_STORE_KEY": other}))
    assert "cannot decrypt store (wrong key?)" in r.stderr
    status, got, err = store.get("KEPT", env={"SECRETS_RUN_STORE_KEY": other})
    assert status == 1 and got == b"" and "cannot decrypt store (wrong key?)" in err

    r = _unchanged_after(store, lambda: store.set("KEPT", ""))
    assert "the value is empty" in r.stderr
    r = _unchanged_after(store, lambda: store.set("KEPT", "\n"))
    assert "the value is empty" in r.stderr
    r = _unchanged_after(store, lambda: store.set("not-a-name", proj.secret()))
    assert "not a valid name" in r.stderr

    store.key_file.chmod(0o644)
    r = _unchanged_after(store, lambda: store.set("KEPT", proj.secret()))
    assert f"key file {store.key_file} is readable by others (mode 0644); chmod 600 it" in r.stderr
    r = proj.run("store", "list", "--store", store.path)
    assert r.status == 1 and "readable by others" in r.stderr
    store.key_file.chmod(0o600)


def test_corrupted_truncated_and_foreign_files_are_refused_never_overwritten(proj, store):
    store.init()
    assert store.set("KEPT", proj.secret()).status == 0
    good = store.path.read_bytes()

    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    store.path.write_bytes(bytes(flipped))
    r = _unchanged_after(store, lambda: store.set("KEPT", proj.secret()))
    assert str(store.path) in r.stderr and "cannot decrypt store (wrong key?)" in r.stderr

    store.path.write_bytes(good[:30])
    r = _unchanged_after(store, lambda: store.set("KEPT", proj.secret()))
    assert f"{store.path}: store file is truncated or corrupted" in r.stderr
    r = _unchanged_after(store, lambda: store.run("list"))
    assert "truncated or corrupted" in r.stderr

    store.path.write_bytes(b"version: 1\nnot a store at all\n" * 4)
    r = _unchanged_after(store, lambda: store.run("history", "KEPT"))
    assert "not a secrets-run store" in r.stderr

    newer = bytearray(good)
    newer[8] = 2
    store.path.write_bytes(bytes(newer))
    r = _unchanged_after(store, lambda: store.run("list"))
    assert "store format 2 is newer than this secrets-run reads" in r.stderr


def test_missing_store(proj, store):
    store.init()
    store.path.unlink()
    r = store.set("X", proj.secret())
    assert r.status == 1 and f"store {store.path} does not exist" in r.stderr, r
    assert not store.path.exists(), "set must not create a store"
    status, got, err = store.get("X")
    assert status == 1 and "does not exist" in err


def test_concurrent_writers_lose_nothing(proj, store):
    store.init()
    writers, rounds = 8, 50
    last = {}
    errors = []

    def writer(i):
        for n in range(rounds):
            value = secrets.token_hex(16)
            for name in (f"NAME_{i}", "SHARED"):
                r = store.set(name, value)
                if r.status != 0:
                    errors.append(r.stderr)
                    return
            last[i] = value

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    r = store.run("list", "--format", "json")
    listed = {e["name"]: e for e in json.loads(r.stdout)}
    for i in range(writers):
        assert listed[f"NAME_{i}"]["latest"] == rounds, listed[f"NAME_{i}"]
        assert digest(store.get(f"NAME_{i}")[1]) == digest(last[i])
    assert listed["SHARED"]["latest"] == writers * rounds
    r = store.run("history", "SHARED", "--format", "json")
    assert [e["version"] for e in json.loads(r.stdout)] == list(range(400, 390, -1))
    assert digest(store.get("SHARED")[1]) in {digest(v) for v in last.values()}
    leftovers = [p.name for p in store.path.parent.iterdir() if ".tmp." in p.name]
    assert not leftovers, leftovers


def test_writer_killed_mid_write_leaves_old_or_new(proj, store):
    store.init()
    # random bytes, not ending in a newline (set drops one trailing newline)
    current = secrets.token_bytes(256 * 1024) + b"."
    assert store.set("BIG", current).status == 0
    rng = random.Random()
    new_seen = 0
    for i in range(100):
        new = secrets.token_bytes(256 * 1024) + b"."
        src = proj.data / "value"
        src.write_bytes(new)
        with open(src, "rb") as stdin:
            p = subprocess.Popen([str(proj.bin), "store", "set", "BIG", "--store", str(store.path)],
                                 cwd=str(proj.dir), env=proj._env(None), stdin=stdin,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.03))
            p.kill()
            p.wait()
        status, got, err = store.get("BIG")
        assert status == 0, f"round {i}: the store did not open after kill -9: {err}"
        assert digest(got) in (digest(current), digest(new)), f"round {i}: neither the old nor the new value"
        if got == new:
            new_seen += 1
            current = new
    print(f"kill test: new value survived {new_seen} of 100 kills")
    # a later writer clears what killed writers left behind
    assert store.set("BIG", proj.secret()).status == 0
    leftovers = [p.name for p in store.path.parent.iterdir() if ".tmp." in p.name]
    assert not leftovers, leftovers


def _set_from_terminal(proj, store, first, second):
    """Runs `store set TTY_SECRET` with a pseudo-terminal as stdin, types first and second;
    returns (status, everything the terminal showed)."""
    import pty
    import select
    master, slave = pty.openpty()
    p = subprocess.Popen([str(proj.bin), "store", "set", "TTY_SECRET", "--store", str(store.path)],
                         cwd=str(proj.dir), env=proj._env(None), stdin=slave,
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    shown = b""

    def read_until(marker, timeout=10):
        nonlocal shown
        deadline = time.monotonic() + timeout
        while marker not in shown and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    shown += os.read(master, 4096)
                except OSError:
                    break

    read_until(b"Value: ")
    os.write(master, first.encode() + b"\n")
    read_until(b"Again: ")
    os.write(master, second.encode() + b"\n")
    try:
        status = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise
    read_until(b"\0", timeout=0.3)
    os.close(master)
    proj.outputs.append((b"", shown))
    return status, shown


def test_set_from_a_terminal_asks_twice_without_echo(proj, store):
    store.init()
    value = proj.secret()
    status, shown = _set_from_terminal(proj, store, value, value)
    assert status == 0, f"store set from a terminal exited {status}"
    assert value.encode() not in shown, "the value was echoed"
    assert digest(store.get("TTY_SECRET")[1]) == digest(value)

    before = sha256(store.path)
    status, shown = _set_from_terminal(proj, store, proj.secret(), proj.secret())
    assert status == 1 and b"the two entries differ" in shown
    assert sha256(store.path) == before


def test_default_store_path_is_beside_the_manifest(proj, store):
    """A file backend without `path` reads .secrets-run/store in the manifest's directory
    (docs/manifest.md), also when the run starts in a subdirectory."""
    store.init()
    value = proj.secret()
    assert store.set("TOKEN", value).status == 0
    proj.standard_manifest(backends="local: {type: file}",
                           secrets_block='TOKEN: {from: "local:TOKEN", owner: team-a}')
    sub = proj.dir / "sub"
    sub.mkdir()
    step = proj.script(f"""report same "$(same "$TOKEN_FILE" '{proj.expect(value)}')"\n""")
    r = proj.run("run", "--", step, cwd=sub)
    assert r.status == 0, r
    assert proj.report() == {"same": "yes"}


def test_no_key_and_no_home_said_plainly(proj, store):
    store.init()
    proj.standard_manifest(backends="local: {type: file}",
                           secrets_block='A: {from: "local:A", owner: team-a}')
    r = proj.run("run", "--", "true", env={"XDG_CONFIG_HOME": None, "HOME": None})
    assert r.status == 125 and "no store key" in r.stderr and "$HOME is unknown" in r.stderr, r
    status, _, err = store.get("A", env={"XDG_CONFIG_HOME": None, "HOME": None})
    assert status == 1 and "no store key" in err and "$HOME is unknown" in err, err
