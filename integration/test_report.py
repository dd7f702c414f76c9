"""report: one self-contained HTML page made from the manifest, the stores, the approvals and
the audit logs. Real runs write the log (a secret read, one granted and never read, one leaked);
the page is rendered in headless Chromium and what its DOM says per secret (fetches, leaks,
unread grants, approvals, rotation) is checked against the log it was made from. The page has
no script and loads nothing; a tampered log makes no page."""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

MANIFEST = """\
version: 1
project: report-test
defaults: {environment: dev}
backends:
  local: {type: file}
environments:
  dev: {}
  prod: {protected: true}
secrets:
  READ_ME: {from: "local:READ_ME", owner: team-a, environments: [dev], rotation: {max_age: 30d, fail_after: 45d}}
  UNREAD: {from: "local:UNREAD", owner: team-b, environments: [dev]}
  EPHEMERAL: {generate: {length: 32}, deliver: fd}
  PROD_TOKEN: {from: "local:PROD_TOKEN", owner: team-c, environments: [prod], approved_by: [alice, bob]}
policy:
  allowed_signers: allowed_signers
"""


class Rows(HTMLParser):
    """The data-* attributes of the secrets table's rows, by secret name."""

    def __init__(self):
        super().__init__()
        self.rows, self.tags = {}, []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "tr" and (a.get("id") or "").startswith("secret-"):
            self.rows[a["id"][len("secret-"):]] = a


def render(proj, page):
    """The DOM headless Chromium built from the page (no network, a throwaway profile)."""
    profile = proj.data / "chromium-profile"
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(proj.data)})
    assert r.returncode == 0 and "</html>" in r.stdout, r.stderr[-2000:]
    shot = proj.data / "page.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()],
                   capture_output=True, timeout=120, env={**os.environ, "HOME": str(proj.data)})
    assert shot.is_file() and shot.stat().st_size > 10000
    return r.stdout


def expected_from(log):
    """Per secret: fetches, leaks (with their counts), unread file deliveries (guard on)."""
    records = [json.loads(line) for line in log.read_text().splitlines()]
    runs = {}
    for rec in records:
        runs.setdefault(rec["run"], []).append(rec)
    out = {}
    for recs in runs.values():
        exit_ = next(r for r in recs if r["event"] == "run.exit")
        guard = "output-guard" in exit_["sandbox"]["active"]
        read = {r["name"] for r in recs if r["event"] == "secret.read"}
        delivered = {r["name"]: r["method"] for r in recs if r["event"] == "secret.deliver"}
        for r in recs:
            e = out.setdefault(r.get("name"), {"fetches": 0, "leaks": 0, "unread": 0, "last": ""})
            if r["event"] == "secret.fetch":
                e["fetches"] += 1
                start = next(x for x in recs if x["event"] == "run.start")
                e["last"] = max(e["last"], start["ts"])
                if guard and delivered.get(r["name"]) == "file" and r["name"] not in read:
                    e["unread"] += 1
            elif r["event"] == "leak":
                e["leaks"] += r.get("count", 1)
    return out, any("output-guard" in r["sandbox"]["active"] for r in records if r["event"] == "run.exit")


@pytest.fixture
def world(proj):
    proj.manifest(MANIFEST)
    values = {name: proj.secret() for name in ["READ_ME", "UNREAD", "PROD_TOKEN"]}
    assert proj.run("store", "init").status == 0
    for name, value in values.items():
        assert proj.run("store", "set", name, input=value).status == 0
    (proj.dir / "allowed_signers").write_text("")
    if shutil.which("ssh-keygen"):
        key = proj.data / "alice"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        pub = " ".join(key.with_suffix(".pub").read_text().split()[:2])
        (proj.dir / "allowed_signers").write_text(f"alice {pub}\n")
        assert proj.run("approve", "PROD_TOKEN", "--key", key).status == 0
    log = proj.data / "audit.jsonl"
    step = proj.script('cat "$READ_ME_FILE" > /dev/null; echo done')
    assert proj.run("run", "--audit-log", log, "--", step).status == 0
    leak = proj.script('cat "$READ_ME_FILE"; echo')
    r = proj.run("run", "--audit-log", log, "--on-leak", "warn", "--", leak)
    assert r.status == 0 and "leak" in r.stderr, r
    return proj, log, values


@pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed (packaging/install-deps.sh installs it)")
def test_report_renders_what_the_audit_log_says(world):
    proj, log, values = world
    page = proj.data / "report.html"
    r = proj.run("report", "--audit-log", log, "-o", page)
    assert r.status == 0 and "2 runs from 1 audit log" in r.stdout, r
    text = page.read_text()
    # self-contained and readable with JavaScript off: no script, nothing fetched from elsewhere
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|url\(|@import""", text, re.I), text
    for value in values.values():
        assert value not in text
    parser = Rows()
    parser.feed(render(proj, page))
    rows = parser.rows
    assert sorted(rows) == ["EPHEMERAL", "PROD_TOKEN", "READ_ME", "UNREAD"]
    expected, guard = expected_from(log)
    for name, row in rows.items():
        e = expected.get(name, {"fetches": 0, "leaks": 0, "unread": 0, "last": ""})
        assert (int(row["data-fetches"]), int(row["data-leaks"]), int(row["data-unread"]), row["data-last-fetch"]) == \
            (e["fetches"], e["leaks"], e["unread"], e["last"]), (name, row, e)
    assert int(rows["READ_ME"]["data-fetches"]) == 2 and int(rows["READ_ME"]["data-leaks"]) == 1
    assert int(rows["PROD_TOKEN"]["data-fetches"]) == 0
    if guard:
        assert int(rows["UNREAD"]["data-unread"]) == 2 and int(rows["READ_ME"]["data-unread"]) == 0
    assert rows["READ_ME"]["data-rotation"] == "ok" and rows["UNREAD"]["data-rotation"] == "none"
    if shutil.which("ssh-keygen"):
        assert rows["PROD_TOKEN"]["data-approvals"] == "prod:alice:ok,prod:bob:missing"
    assert "svg" in parser.tags and "table" in parser.tags


def test_tampered_log_makes_no_page(world):
    proj, log, values = world
    lines = log.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"dev"', '"prod"', 1) if '"dev"' in lines[1] else lines[1].replace("}", ',"x":1}', 1)
    log.write_text("".join(lines))
    page = proj.data / "report.html"
    r = proj.run("report", "--audit-log", log, "-o", page)
    assert r.status == 1 and "tampered" in r.stderr and f"{log}:" in r.stderr, r
    assert not page.exists()


def test_report_needs_an_output(proj):
    proj.manifest(MANIFEST)
    r = proj.run("report")
    assert r.status == 1 and "-o FILE.html" in r.stderr, r
