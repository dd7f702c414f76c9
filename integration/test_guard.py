"""The output guard (DESIGN §5, docs/sandbox.md): every file the step writes, anywhere, is
scanned after it (a file about to be removed, before it goes), the CI command files are masked
in place, the first open of each secret file is on record with its program, and where the
step connected. As root and as uid 65534, in strict and in auto mode.

Secret values are generated at test time; none is written literally in this repository."""

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from test_sandbox import Box, box, hostemu, probe  # noqa: F401  (fixtures)

LEAK = re.compile(r"^secrets-run: (error|warning): leak: (.+?):(\d+(?::\d+)?) \((\w+)\): (\w+)"
                  r"(?: \(written by ([^)]*)\))?$")


def file_leaks(r, positions=False):
    """(path, form, name) of each leak report on stderr, in order; with positions,
    (path, "LINE:COL", form, name)."""
    out = []
    for line in r.stderr.splitlines():
        m = LEAK.match(line)
        if m and m.group(2) not in ("stdout", "stderr", "stdout+stderr"):
            out.append((m.group(2), m.group(3), m.group(4), m.group(5)) if positions
                       else (m.group(2), m.group(4), m.group(5)))
    return out


def writers(r):
    """path -> the program a leak report says wrote it."""
    return {m.group(2): m.group(6) for m in map(LEAK.match, r.stderr.splitlines()) if m and m.group(6)}


def audit(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def prepare(box, home=True):
    """One file-delivered secret TOKEN (an env-backend value) and the environment to run
    with: a HOME and CI command files of the step's user, outside the working directory."""
    value = box.secret()
    box.proj.standard_manifest('TOKEN: {from: "ci:SRC_TOKEN", owner: t}', backends="ci: {type: env}")
    ci = box.data / "ci"
    ci.mkdir(exist_ok=True)
    env = {"SRC_TOKEN": value, "GITHUB_ACTIONS": None}
    for name in ("GITHUB_OUTPUT", "GITHUB_ENV"):
        f = ci / name.lower()
        f.write_text("")
        env[name] = str(f)
    if home:
        h = box.data / "home"
        h.mkdir(exist_ok=True)
        env["HOME"] = str(h)
    return value, env


@pytest.fixture
def tmp_name():
    """A unique path under /tmp, removed after the test."""
    p = Path("/tmp") / f"sr-guard-{uuid.uuid4().hex}"
    yield p
    if p.exists():
        p.unlink()


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_every_leaking_write_is_reported_and_ci_files_are_masked(box, mode, tmp_name):
    value, env = prepare(box)
    step = box.script(f"""
        T=$(cat "$TOKEN_FILE")
        echo "token=$T" >> "$GITHUB_OUTPUT"
        echo "TOKEN_COPY=$T" >> "$GITHUB_ENV"
        echo "//registry.npmjs.org/:_authToken=$T" > ~/.npmrc
        printf 'x=%s\\n' "$T" > '{tmp_name}'
        git init -q repo && git -C repo remote add origin "https://x:$T@example.invalid/repo"
        printf 'a\\nb %s\\n' "$T" > gone.log; rm gone.log
        echo clean > clean.txt; echo clean > ~/clean.txt
        echo done
        """)
    r = box.run("run", "-v", "--sandbox", mode, "--", step, env=env)
    assert r.status == 123, r
    assert r.stdout == "done\n", r
    got = sorted(file_leaks(r))
    want = sorted([(env["GITHUB_OUTPUT"], "raw", "TOKEN"), (env["GITHUB_ENV"], "raw", "TOKEN"),
                   (env["HOME"] + "/.npmrc", "raw", "TOKEN"), (str(tmp_name), "raw", "TOKEN"),
                   ("repo/.git/config", "raw", "TOKEN"), ("gone.log", "raw", "TOKEN")])
    assert got == want, r.stderr
    # PATH:LINE:COL, the column counted in bytes from the line's start
    where = {p: pos for p, pos, _, _ in file_leaks(r, positions=True)}
    assert where[env["GITHUB_OUTPUT"]] == "1:7" and where[env["GITHUB_ENV"]] == "1:12", where
    assert where[env["HOME"] + "/.npmrc"] == "1:34" and where[str(tmp_name)] == "1:3", where
    assert where["gone.log"] == "2:3" and re.fullmatch(r"\d+:\d+", where["repo/.git/config"]), where
    # each report names the program that wrote the file
    assert writers(r)["repo/.git/config"] == "git" and writers(r)["gone.log"] == step.name[:15], r.stderr
    # the runner reads these after the step: the value must not reach the later steps
    assert Path(env["GITHUB_OUTPUT"]).read_text() == "token=[REDACTED:TOKEN]\n"
    assert Path(env["GITHUB_ENV"]).read_text() == "TOKEN_COPY=[REDACTED:TOKEN]\n"
    assert "output-guard" in next(line for line in r.stderr.splitlines() if "sandbox: active:" in line)


def test_a_file_replaced_by_rename_is_scanned_before_it_goes(box):
    value, env = prepare(box)
    step = box.script("""
        cat "$TOKEN_FILE" > report.txt
        echo clean > next.txt
        mv next.txt report.txt
        """)
    r = box.run("run", "--", step, env=env)
    assert r.status == 123, r
    assert file_leaks(r) == [("report.txt", "raw", "TOKEN")], r.stderr
    assert (box.dir / "report.txt").read_text() == "clean\n"


def test_clean_writes_anywhere_are_not_reported(box, tmp_name):
    value, env = prepare(box)
    step = box.script(f"""
        cat "$TOKEN_FILE" > /dev/null
        echo build > out.txt; echo ok > '{tmp_name}'; echo x > ~/.cache-file
        echo "result=ok" >> "$GITHUB_OUTPUT"
        """)
    r = box.run("run", "--", step, env=env)
    assert r.status == 0, r
    assert file_leaks(r) == [], r.stderr
    assert Path(env["GITHUB_OUTPUT"]).read_text() == "result=ok\n"


def test_the_first_read_of_a_secret_file_names_its_program(box):
    value, env = prepare(box)
    log = box.data / "audit.jsonl"
    step = box.script('cat "$TOKEN_FILE" > /dev/null; cat "$TOKEN_FILE" > /dev/null\n')
    r = box.run("run", "--audit-log", log, "--", step, env=env)
    assert r.status == 0, r
    assert "granted but not read" not in r.stderr, r
    reads = [e for e in audit(log) if e["event"] == "secret.read"]
    assert len(reads) == 1, reads
    assert reads[0]["name"] == "TOKEN" and reads[0]["file"] == "TOKEN", reads
    if box.root:
        # fanotify makes the opener wait until its name is read: exact
        assert reads[0]["program"] == "cat", reads
    else:
        # inotify says which file, not who: the program is named when it still holds it
        assert reads[0].get("program") in ("cat", None), reads


def test_a_secret_nothing_opens_is_granted_but_not_read(box):
    value, env = prepare(box)
    log = box.data / "audit.jsonl"
    summary = box.data / "ci" / "summary.md"
    summary.write_text("")
    env.update({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    r = box.run("run", "--audit-log", log, "--", "true", env=env)
    assert r.status == 0, r
    assert ("secrets-run: warning: granted but not read: TOKEN — remove it from this stage to follow "
            "least privilege") in r.stderr.splitlines(), r
    assert not [e for e in audit(log) if e["event"] == "secret.read"]
    assert "| `TOKEN` | file `TOKEN` | **granted but not read** |" in summary.read_text()


def test_connections_are_recorded_per_destination_and_program(box):
    value, env = prepare(box)
    log = box.data / "audit.jsonl"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]

    def accept():
        for _ in range(3):
            try:
                c, _ = server.accept()
                c.close()
            except OSError:
                return
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    py = shutil.which("python3", path="/usr/bin")
    step = box.script(f"""
        cat "$TOKEN_FILE" > /dev/null
        {py} -c 'import socket
for _ in range(3): socket.create_connection(("127.0.0.1", {port})).close()'
        """)
    try:
        r = box.run("run", "--audit-log", log, "--", step, env=env)
    finally:
        server.close()
    assert r.status == 0, r
    conns = [e for e in audit(log) if e["event"] == "net.connect"]
    mine = [e for e in conns if e.get("port") == port]
    assert len(mine) == 1, conns
    assert mine[0]["address"] == "127.0.0.1" and mine[0]["count"] == 3, mine
    assert mine[0]["program"] == "python3", mine


def test_without_user_notification_the_run_says_so_and_scans_changed_files(box, hostemu, tmp_name):
    """A kernel without seccomp user notification (emulated): the sandbox line names the guard
    as missing and why, the step runs, and leaks under the working directory are still found
    by `changed`; what it wrote elsewhere is not (the guard's job)."""
    value, env = prepare(box)
    box.prefix = (box.prefix or []) + [str(hostemu), "no-user-notif"]
    step = box.script(f"""
        cat "$TOKEN_FILE" > here.txt
        cat "$TOKEN_FILE" > '{tmp_name}'
        """)
    r = box.run("run", "--", step, env=env)
    assert r.status == 123, r
    line = next(line for line in r.stderr.splitlines() if "sandbox: active:" in line)
    assert "missing: output-guard" in line and "seccomp user notification" in line, line
    assert file_leaks(r) == [("here.txt", "raw", "TOKEN")], r.stderr
    r = box.run("doctor", "--format", "json")
    guard = {x["layer"]: x for x in json.loads(r.stdout)["layers"]}["output-guard"]
    assert guard["works"] == "no" and "user notification" in guard["why"], guard


def test_guard_off_scans_only_the_globs(box, tmp_name):
    value, env = prepare(box)
    step = box.script(f"cat \"$TOKEN_FILE\" > '{tmp_name}'\n")
    r = box.run("run", "-v", "--guard", "off", "--", step, env=env)
    assert r.status == 0 and file_leaks(r) == [], r
    line = next(line for line in r.stderr.splitlines() if "sandbox: active:" in line)
    assert "output-guard" not in line, line


def test_archives_the_step_writes_anywhere_are_looked_into(box, tmp_name):
    value, env = prepare(box)
    tgz = f"{tmp_name}.tgz"
    step = box.script(f"""
        mkdir -p logs && {{ echo start; printf 'token %s\\n' "$(cat "$TOKEN_FILE")"; }} > logs/run.log
        tar czf '{tgz}' logs
        /usr/bin/python3 -c 'import zipfile, sys
with zipfile.ZipFile("report.zip", "w", zipfile.ZIP_DEFLATED) as z: z.write("logs/run.log", "run.log")'
        rm -r logs
        """)
    try:
        r = box.run("run", "--", step, env=env)
    finally:
        if os.path.exists(tgz):
            os.unlink(tgz)
    assert r.status == 123, r
    got = sorted(file_leaks(r, positions=True))
    assert got == sorted([(f"{tgz}!logs/run.log", "2:7", "raw", "TOKEN"),
                          ("report.zip!run.log", "2:7", "raw", "TOKEN"),
                          ("logs/run.log", "2:7", "raw", "TOKEN")]), r.stderr


def test_paths_are_resolved_against_the_callers_dirfd_and_cwd_in_any_thread(box):
    """openat with a directory fd, a relative path with '..', and a write from a second
    thread: each is recorded under the path the step meant."""
    value, env = prepare(box)
    py = "/usr/bin/python3"
    step = box.script(f"""
        mkdir -p a/b c
        {py} -c 'import os, threading
t = open(os.environ["TOKEN_FILE"]).read()
d = os.open("a", os.O_RDONLY | os.O_DIRECTORY)
fd = os.open("b/../via-dirfd.txt", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=d)
os.write(fd, t.encode()); os.close(fd)
def other():
    os.chdir("c")
    with open("../c/from-thread.txt", "w") as f: f.write("t=" + t)
th = threading.Thread(target=other); th.start(); th.join()'
        """)
    r = box.run("run", "--artifacts", "nothing-matches", "--", step, env=env)
    assert r.status == 123, r
    got = sorted(file_leaks(r, positions=True))
    assert got == [("a/via-dirfd.txt", "1:1", "raw", "TOKEN"), ("c/from-thread.txt", "1:3", "raw", "TOKEN")], r.stderr


def test_a_file_in_dev_shm_is_scanned_and_devices_are_not(box):
    value, env = prepare(box)
    shm = Path("/dev/shm") / f"sr-guard-{uuid.uuid4().hex}"
    step = box.script(f"""
        cat "$TOKEN_FILE" > '{shm}'
        cat "$TOKEN_FILE" > /dev/null
        """)
    try:
        r = box.run("run", "--", step, env=env)
    finally:
        if shm.exists():
            shm.unlink()
    assert r.status == 123, r
    assert file_leaks(r) == [(str(shm), "raw", "TOKEN")], r.stderr
