"""Compressed files and archives are looked into (DESIGN §5, docs/redaction-forms.md, "Archives
and compressed files"): `scan` and a run's artifact scan unpack gzip, zip and tar (and bzip2,
xz, zstd) and report a leak in a member as FILE!MEMBER (nested: FILE!INNER!MEMBER); a single
compressed file holds its name without the suffix (app.log.gz!app.log). Bounded: a bomb stops at
1 GiB unpacked with a warning naming the file and the limit; a damaged archive gets a warning
and its raw bytes are scanned too.

The archives are built here with Python's tarfile, zipfile and gzip around values generated at
test time; each is scanned by `secrets-run scan` and, copied by a step into its working
directory, by `secrets-run run --artifacts` (one case by policy.artifacts). Members are
compressible logs, so the value never appears in an archive's raw bytes: scanning them as they
are would find nothing.
"""

import gzip
import io
import json
import os
import re
import tarfile
import zipfile

import pytest

from test_redaction import absent, check, env_secrets, tok

PLACE_RE = re.compile(r"secrets-run: (error|warning): leak: (.+?):\d+(?::\d+)? \(([\w-]+)\): (\w+)(?: \(written by [^)\n]*\))?\n")
WARNING_RE = re.compile(r"secrets-run: warning: scan: (.+)\n")
GIB = 1 << 30


def text(r):
    return r.stderr if isinstance(r.stderr, str) else r.stderr.decode("utf-8", "surrogateescape")


def places(r):
    """Leak reports as (place, secret name), in the order printed."""
    return [(m[1], m[3]) for m in PLACE_RE.findall(text(r))]


def warnings(r):
    return WARNING_RE.findall(text(r))


def log_with(value, lines=200):
    """A log a compressor shrinks well, the value on one of its lines."""
    body = [f"{i:05d} step ok: nothing to report\n" for i in range(lines)]
    body.insert(lines // 2, f"{lines // 2:05d} token={value}\n")
    return "".join(body).encode()


def tgz(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def gzipped(data, name):
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=0) as g:
        g.write(data)
    return buf.getvalue()


def scan_files(proj, mode, files, value, use_policy=False, in_clear=()):
    """Scans files {name: bytes} by `scan` or as the artifacts of a run; returns (result,
    prefix of the places reported, status expected for a leak). Only the files named in
    in_clear may hold the value in their raw bytes."""
    policy = 'artifacts: ["out/*"]' if use_policy else None
    env = env_secrets(proj, {"TOKEN": value}, policy=policy)
    for name, data in files.items():
        assert name in in_clear or value.encode() not in data, f"the value must not be in {name}'s raw bytes"
    if mode == "scan":
        d = proj.data / "files"
        d.mkdir()
        for name, data in files.items():
            (d / name).write_bytes(data)
        r = proj.run("scan", *[d / n for n in files], env=env)
        return r, f"{d}/", 1
    d = proj.data / "art"
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    step = proj.script('cat "$TOKEN_FILE" > /dev/null\nsleep 0.05\nmkdir -p out\ncp "$DATA"/art/* out/\necho done\n')
    args = [] if use_policy else ["--artifacts", "out/*"]
    r = proj.run("run", "--audit-log", proj.data / "audit.jsonl", *args, "--", step, env=env)
    return r, "out/", 123


def audit_leak_paths(proj):
    path = proj.data / "audit.jsonl"
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "leak":
            # the record keeps the file and the member apart: {"path": "a.tgz", "member": "x"}
            found.append(rec["path"] + ("!" + rec["member"] if rec.get("member") else ""))
    return found


MODES = ["scan", "run"]


@pytest.mark.parametrize("mode", MODES)
def test_members_of_tgz_zip_and_gz_are_named(proj, mode):
    value = tok(24)
    log = log_with(value)
    files = {
        "report.tgz": tgz([("logs/clean.txt", b"nothing\n" * 50), ("logs/run.log", log)]),
        "bundle.zip": zipped([("a/b.txt", log)]),
        "app.log.gz": gzipped(log, "app.log"),
    }
    r, prefix, leak_status = scan_files(proj, mode, files, value)
    absent(proj, r, value)
    got = sorted(places(r))
    check(got == sorted([(prefix + "report.tgz!logs/run.log", "TOKEN"), (prefix + "bundle.zip!a/b.txt", "TOKEN"),
                         (prefix + "app.log.gz!app.log", "TOKEN")]), proj, r, f"one leak per archive, by member: {got}")
    check(warnings(r) == [], proj, r, "no warning")
    check(r.status == leak_status, proj, r, f"a leak in an archive exits {leak_status}")
    if mode == "run":
        check(sorted(audit_leak_paths(proj)) == sorted(p for p, _ in got), proj, r,
              "the audit log's leak records name the member the same way")


@pytest.mark.parametrize("mode", MODES)
def test_zip_in_tgz(proj, mode):
    value = tok(24)
    inner = zipped([("logs/run.log", log_with(value))])
    files = {"outer.tgz": tgz([("README", b"readme\n"), ("dist/inner.zip", inner)])}
    r, prefix, leak_status = scan_files(proj, mode, files, value, use_policy=(mode == "run"))
    absent(proj, r, value)
    check(places(r) == [(prefix + "outer.tgz!dist/inner.zip!logs/run.log", "TOKEN")], proj, r,
          "nested members joined by '!'")
    check(r.status == leak_status, proj, r, f"exit {leak_status}")


def bomb(value):
    """A gzip of more than 1 GiB in about 1 MiB: a member with the value, then many members of
    16 MiB of zeros (a gzip file may be several members end to end), then the value again."""
    zeros = gzip.compress(b"\0" * (16 << 20), compresslevel=9, mtime=0)
    first = gzip.compress(log_with(value), mtime=0)
    return first + zeros * 70 + gzip.compress(log_with(value), mtime=0)


def run_measured(proj, args, env):
    """secrets-run ARGS with its peak resident memory (KiB) in data/maxrss."""
    rss = proj.data / "maxrss"
    wrapper = ("import os, sys\n"
               "pid = os.fork()\n"
               "if pid == 0:\n    os.execv(sys.argv[2], sys.argv[2:])\n"
               "_, status, usage = os.wait4(pid, 0)\n"
               "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
               "sys.exit(os.waitstatus_to_exitcode(status))\n")
    r = proj.run(*args, env=env, timeout=120, prefix=["/usr/bin/python3", "-c", wrapper, rss])
    return r, int(rss.read_text())


def test_bomb_stops_at_the_limit_with_memory_bounded(proj):
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    path = proj.data / "bomb.log.gz"
    path.write_bytes(bomb(value))
    assert path.stat().st_size < 2 << 20
    r, maxrss_kib = run_measured(proj, ["scan", path], env)
    absent(proj, r, value)
    check(places(r) == [(f"{path}!bomb.log", "TOKEN")], proj, r,
          "the leak before the limit is reported, the one after it is not read")
    check(warnings(r) == [f"{path}: stopped after {GIB} bytes unpacked, the limit for one file: the rest is not scanned"],
          proj, r, "one warning naming the file and the limit")
    check(r.status == 1, proj, r, "the leak found still counts: exit 1")
    check(maxrss_kib < 128 * 1024, proj, r, f"memory stays bounded while unpacking 1 GiB: {maxrss_kib} KiB")


def test_bomb_as_an_artifact(proj):
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    (proj.data / "bomb.log.gz").write_bytes(bomb(value))
    step = proj.script('sleep 0.05\ncp "$DATA/bomb.log.gz" out.log.gz\necho done\n')
    r = proj.run("run", "--artifacts", "*.gz", "--", step, env=env, timeout=120)
    absent(proj, r, value)
    check(places(r) == [("out.log.gz!out.log", "TOKEN")], proj, r, "the leak before the limit")
    check(warnings(r) == [f"out.log.gz: stopped after {GIB} bytes unpacked, the limit for one file: the rest is not scanned"],
          proj, r, "the limit's warning")
    check(r.status == 123, proj, r, "exit 123")


@pytest.mark.parametrize("mode", MODES)
def test_damaged_archives_warn_and_are_scanned_raw(proj, mode):
    value = tok(24)
    # random-looking filler the compressor cannot shrink, so a cut at 3/4 of the compressed
    # bytes falls after the first member's line with the value
    filler = "".join(tok(48) + "\n" for _ in range(3000)).encode()
    full = tgz([("first.log", filler + b"token=" + value.encode() + b"\n"), ("second.log", filler)])
    files = {
        "cut.tgz": full[: len(full) * 3 // 4],                                    # truncated
        "fake.gz": b"\x1f\x8b\x08 not really gzip\n" + log_with(value),        # corrupt, the value in clear
    }
    r, prefix, leak_status = scan_files(proj, mode, files, value, in_clear=("fake.gz",))
    absent(proj, r, value)
    got = sorted(places(r))
    check(got == sorted([(prefix + "cut.tgz!first.log", "TOKEN"), (prefix + "fake.gz", "TOKEN")]), proj, r,
          f"the readable part of the truncated archive, and the corrupt file's raw bytes: {got}")
    w = warnings(r)
    check(len(w) == 2 and all(": damaged archive (" in x for x in w)
          and any(x.startswith(prefix + "cut.tgz: ") for x in w) and any(x.startswith(prefix + "fake.gz: ") for x in w),
          proj, r, f"a warning for each damaged file: {w}")
    check(r.status == leak_status, proj, r, f"exit {leak_status}")


@pytest.mark.parametrize("mode", MODES)
def test_clean_archives_exit_0(proj, mode):
    value = tok(24)
    clean = b"nothing secret here\n" * 100
    files = {
        "report.tgz": tgz([("logs/run.log", clean)]),
        "bundle.zip": zipped([("a.txt", clean), ("inner.tgz", tgz([("b.txt", clean)]))]),
        "app.log.gz": gzipped(clean, "app.log"),
    }
    r, _, _ = scan_files(proj, mode, files, value)
    check(places(r) == [] and warnings(r) == [] and "leak" not in text(r), proj, r, "no report, no warning")
    check(r.status == 0, proj, r, "clean archives: exit 0")
