"""The audit log (DESIGN §9): what runs record, that concurrent runs keep one intact chain,
that `audit verify` names each kind of tampering, signatures, the GitHub step summary, and
that a log that cannot be written stops the run before the step."""

import json
import os
import stat

import pytest

GITHUB_PUSH = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/app", "GITHUB_ACTOR": "alice",
               "GITHUB_RUN_ID": "4242", "GITHUB_WORKFLOW": "ci", "GITHUB_SHA": "0" * 40,
               "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main",
               "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch"}


def _manifest(proj, extra_policy=None):
    """DB_PASSWORD (file) and API_KEY (fd) from an exec provider with values made now."""
    db, api = proj.secret(), proj.secret()
    provider = proj.provider({"db": db, "api": api})
    proj.standard_manifest(
        secrets_block="""
            DB_PASSWORD: {from: "p:db", owner: team-db}
            API_KEY: {from: "p:api", owner: team-api, deliver: fd}
            """,
        backends=f"p: {{type: exec, command: [{json.dumps(str(provider))}]}}",
        policy=extra_policy)
    return db, api


def _log_path(proj):
    return proj.base / "state" / "secrets-run" / "audit.jsonl"


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _verify(proj, path, *args):
    r = proj.run("audit", "verify", str(path), *args)
    return r


def _verify_json(proj, path, *args):
    r = proj.run("audit", "verify", str(path), "--format", "json", *args)
    assert r.status in (0, 1), r
    return r.status, json.loads(r.stdout)


def _assert_no_values(proj, path):
    data = path.read_bytes()
    for value in proj.values:
        assert value.encode() not in data, "a secret value is in the audit log"


def test_runs_record_what_happened_and_verify(proj):
    db, api = _manifest(proj)
    step = proj.script("sleep 0.3; cat \"$DB_PASSWORD_FILE\" >/dev/null\n")
    leaky = proj.script("echo before; cat \"$DB_PASSWORD_FILE\"; echo\n")
    a = proj.spawn("run", "--", step)
    b = proj.spawn("run", "--", step)
    assert a.wait().status == 0
    assert b.wait().status == 0
    r = proj.run("run", "--", leaky)
    assert r.status == 123, r

    log = _log_path(proj)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    _assert_no_values(proj, log)
    v = _verify(proj, log)
    assert v.status == 0, v
    records = _records(log)
    assert v.stdout.strip() == f"{len(records)} records, intact"

    runs = {}
    for rec in records:
        runs.setdefault(rec["run"], []).append(rec)
    assert len(runs) == 3
    for run_id, recs in runs.items():
        assert len(run_id) == 16
        assert [x["seq"] for x in recs] == list(range(1, len(recs) + 1))
        events = [x["event"] for x in recs]
        assert events[0] == "run.start" and events[-1] == "run.exit"
        start, end = recs[0], recs[-1]
        assert start["project"] == "integration" and start["environment"] == "dev"
        assert start["command"] == str(step) or start["command"] == str(leaky)
        assert len(start["manifest_sha256"]) == 64
        assert start["ci"]["provider"] == "local"
        assert "mode" in start["sandbox"] and isinstance(start["sandbox"]["active"], list)
        fetched = {x["name"]: x["backend"] for x in recs if x["event"] == "secret.fetch"}
        assert fetched == {"DB_PASSWORD": "p", "API_KEY": "p"}
        delivered = {x["name"]: x["method"] for x in recs if x["event"] == "secret.deliver"}
        assert delivered == {"DB_PASSWORD": "file", "API_KEY": "fd"}
        leaks = [x for x in recs if x["event"] == "leak"]
        if start["command"] == str(leaky):
            assert len(leaks) == 1
            assert leaks[0]["name"] == "DB_PASSWORD" and leaks[0]["stream"] == "stdout"
            assert leaks[0]["offset"] == len("before\n")
            assert (leaks[0]["line"], leaks[0]["col"]) == (2, 1) and "member" not in leaks[0]
            assert end["status"] == 123 and end["command_status"] == 0 and end["leaks"] == 1
        else:
            assert not leaks
            assert end["status"] == 0 and end["command_status"] == 0 and end["leaks"] == 0
        assert end["duration_ms"] >= 0
    # every record is one compact line with the members in a stable order
    for line in log.read_text().splitlines():
        assert line.startswith('{"ts":"') and '","run":"' in line and ',"prev":"' in line


def test_concurrent_runs_interleave_whole_records(proj):
    _manifest(proj)
    step = proj.script("true\n")
    running = [proj.spawn("run", "--", step) for _ in range(6)]
    for p in running:
        assert p.wait().status == 0
    log = _log_path(proj)
    records = _records(log)   # every line parses: no interleaved bytes
    assert len({r["run"] for r in records}) == 6
    assert len(records) == 6 * 6   # start, 2 fetch, 2 deliver, exit
    assert _verify(proj, log).status == 0


def test_policy_deny_recorded_for_withheld_pull_request_secrets(proj):
    value = proj.secret()
    provider = proj.provider({"db": value})
    proj.standard_manifest(
        secrets_block="""
            PROD_DB: {from: "p:db", owner: team-db, environments: [prod], approved_by: [alice, bob]}
            """,
        backends=f"p: {{type: exec, command: [{json.dumps(str(provider))}]}}", protected_prod=True)
    pr = {**GITHUB_PUSH, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/7/merge",
          "GITHUB_REF_NAME": "7/merge", "GITHUB_HEAD_REF": "feature/x", "GITHUB_BASE_REF": "main"}
    r = proj.run("run", "-e", "prod", "--", "true", env=pr)
    assert r.status == 0, r
    records = _records(_log_path(proj))
    denies = [x for x in records if x["event"] == "policy.deny"]
    assert len(denies) == 1 and denies[0]["name"] == "PROD_DB" and denies[0]["rule"]
    start = records[0]
    assert start["ci"]["repository"] == "acme/app" and start["ci"]["actor"] == "alice"
    assert start["ci"]["run_id"] == "4242" and start["ci"]["workflow"] == "ci"
    assert not [x for x in records if x["event"] == "secret.fetch"]


def test_only_out_of_scope_is_denied_and_audited(proj):
    proj.standard_manifest("""
        PROD_ONLY: {generate: {length: 32}, environments: [prod]}
        """)
    r = proj.run("run", "--only", "PROD_ONLY", "--", "true")
    assert r.status == 125, r
    records = _records(_log_path(proj))
    assert [x["event"] for x in records] == ["run.start", "policy.deny", "run.exit"]
    assert records[1]["name"] == "PROD_ONLY"
    assert records[2]["status"] == 125 and records[2]["command_status"] is None


def test_dry_run_writes_nothing(proj):
    _manifest(proj)
    r = proj.run("run", "--dry-run")
    assert r.status == 0, r
    assert not _log_path(proj).exists()


def test_audit_log_option_and_policy(proj, tmp_path):
    _manifest(proj, extra_policy="audit_log: logs/trail.jsonl")
    assert proj.run("run", "--", "true").status == 0
    assert (proj.dir / "logs" / "trail.jsonl").exists()
    other = tmp_path / "elsewhere" / "cli.jsonl"
    assert proj.run("run", "--audit-log", str(other), "--", "true").status == 0
    assert _records(other)[0]["event"] == "run.start"
    assert len(_records(proj.dir / "logs" / "trail.jsonl")) == 6


def _two_runs_log(proj):
    _manifest(proj)
    step = proj.script("true\n")
    for _ in range(2):
        assert proj.run("run", "--", step).status == 0
    log = _log_path(proj)
    return log, log.read_bytes().splitlines(keepends=True)


def _write(proj, lines, name="tampered.jsonl"):
    path = proj.data / name
    path.write_bytes(b"".join(lines))
    return path


def test_tamper_edit_a_byte(proj):
    log, lines = _two_runs_log(proj)
    edited = list(lines)
    edited[2] = edited[2].replace(b'"API_KEY"', b'"API_KEX"')   # line 3: a secret.fetch
    assert edited[2] != lines[2]
    status, v = _verify_json(proj, _write(proj, edited))
    assert status == 1 and v["intact"] is False
    assert v["first_bad_line"] == 3 and "edited" in v["reason"]
    r = _verify(proj, _write(proj, edited))
    assert r.status == 1 and ":3: tampered:" in r.stdout


def test_tamper_delete_a_line(proj):
    log, lines = _two_runs_log(proj)
    status, v = _verify_json(proj, _write(proj, lines[:3] + lines[4:]))
    assert status == 1 and v["first_bad_line"] == 4 and "deleted" in v["reason"]


def test_tamper_swap_two_lines(proj):
    log, lines = _two_runs_log(proj)
    swapped = list(lines)
    swapped[3], swapped[4] = swapped[4], swapped[3]
    status, v = _verify_json(proj, _write(proj, swapped))
    assert status == 1 and v["first_bad_line"] == 4 and "reordered" in v["reason"]


def test_tamper_truncate_mid_line(proj):
    log, lines = _two_runs_log(proj)
    cut = lines[:-1] + [lines[-1][:25]]
    status, v = _verify_json(proj, _write(proj, cut))
    assert status == 1 and v["first_bad_line"] == len(lines) and "truncated" in v["reason"]
    assert v["records"] == len(lines)


def test_verify_unreadable_is_2(proj):
    r = proj.run("audit", "verify", str(proj.data / "missing.jsonl"))
    assert r.status == 2 and "missing.jsonl" in r.stderr
    r = proj.run("audit", "verify")
    assert r.status == 2


def test_signatures_verify_with_the_right_key_only(proj):
    keys = proj.base / "keys"
    r = proj.run("audit", "keygen", str(keys / "audit.key"), "--format", "json")
    assert r.status == 0, r
    paths = json.loads(r.stdout)
    assert stat.S_IMODE(os.stat(paths["secret_key"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths["public_key"]).st_mode) == 0o644
    assert proj.run("audit", "keygen", str(keys / "other.key")).status == 0
    assert proj.run("audit", "keygen", str(keys / "audit.key")).status == 2   # never overwritten
    _manifest(proj)
    env = {"SECRETS_RUN_AUDIT_KEY": paths["secret_key"]}
    assert proj.run("run", "--", "true", env=env).status == 0
    log = _log_path(proj)
    assert all(len(x["sig"]) == 128 for x in _records(log))
    r = _verify(proj, log, "--public-key", paths["public_key"])
    assert r.status == 0 and "intact" in r.stdout, r
    status, v = _verify_json(proj, log, "--public-key", str(keys / "other.key.pub"))
    assert status == 1 and v["first_bad_line"] == 1 and "bad signature" in v["reason"]
    # an unsigned record in a signed log
    assert proj.run("run", "--", "true").status == 0
    status, v = _verify_json(proj, log, "--public-key", paths["public_key"])
    assert status == 1 and v["first_bad_line"] == 7 and "no signature" in v["reason"]


def test_default_key_paths_and_loose_key_refused(proj):
    r = proj.run("audit", "keygen")
    assert r.status == 0, r
    key = proj.base / "config" / "secrets-run" / "audit.key"
    assert key.exists() and (key.parent / "audit.pub").exists()
    key.chmod(0o644)
    _manifest(proj)
    marker = proj.data / "ran"
    step = proj.script(f"touch '{marker}'\n")
    r = proj.run("run", "--", step, env={"SECRETS_RUN_AUDIT_KEY": str(key)})
    assert r.status == 125 and "0600" in r.stderr, r
    assert not marker.exists()


def test_unwritable_audit_log_stops_the_run_before_the_step(proj):
    _manifest(proj)
    marker = proj.data / "ran"
    step = proj.script(f"touch '{marker}'\n")
    blocker = proj.data / "not-a-dir"
    blocker.write_text("")
    r = proj.run("run", "--audit-log", str(blocker / "audit.jsonl"), "--", step)
    assert r.status == 125, r
    assert "audit log" in r.stderr and str(blocker) in r.stderr
    assert not marker.exists()


def test_github_step_summary(proj):
    db, api = _manifest(proj)
    summary = proj.data / "summary.md"
    leaky = proj.script("cat \"$DB_PASSWORD_FILE\"\n")
    r = proj.run("run", "--", leaky, env={**GITHUB_PUSH, "GITHUB_STEP_SUMMARY": str(summary)})
    assert r.status == 123, r
    text = summary.read_text()
    assert "exited with status 123" in text
    assert "`DB_PASSWORD` | file" in text and "`API_KEY` | fd" in text
    assert "Sandbox:" in text
    assert "1 leak detected" in text and "- `DB_PASSWORD` (raw) at `stdout:1:1`\n" in text
    assert db not in text and api not in text
    assert "::error" in r.stdout   # the leak is also an annotation
    # not under GitHub Actions: no summary
    summary.unlink()
    r = proj.run("run", "--", "true", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert r.status == 0 and not summary.exists()


def test_leak_flood_is_reported_and_recorded_ten_at_a_time(proj):
    """A step that prints its secret on every line: per secret, form and place, the first 10
    leaks are reported and recorded one by one, the rest counted in one line and one record
    with their first and last positions; the summary and run.exit count every leak."""
    value = proj.secret()
    proj.register(value)
    proj.standard_manifest('TOKEN: {from: "ci:SRC_TOKEN", owner: team-a}', backends="ci: {type: env}")
    step = proj.script("""
        i=0
        while [ $i -lt 1000 ]; do printf 'x%s\\n' "$(cat "$TOKEN_FILE")"; i=$((i + 1)); done
        cat "$TOKEN_FILE" >&2; echo >&2
        sleep 0.05; i=0
        while [ $i -lt 25 ]; do cat "$TOKEN_FILE"; echo; i=$((i + 1)); done > out.log
        """)
    r = proj.run("run", "--", step, env={"SRC_TOKEN": value, **GITHUB_PUSH})
    assert r.status == 123
    assert value not in r.stdout and value not in r.stderr
    line = len(value) + 2
    reports = [x for x in r.stderr.splitlines() if ": leak: " in x]
    assert reports == (
        [f"secrets-run: error: leak: stdout:{i + 1}:2 (raw): TOKEN" for i in range(10)]
        + ["secrets-run: error: leak: stderr:1:1 (raw): TOKEN"]
        + [f"secrets-run: error: leak: out.log:{i + 1}:1 (raw): TOKEN (written by {step.name[:15]})"
           for i in range(10)]
        + ["secrets-run: error: leak: stdout (raw): TOKEN: 990 more, from stdout:11:2 to stdout:1000:2",
           "secrets-run: error: leak: out.log (raw): TOKEN: 15 more, from out.log:11:1 to out.log:25:1"]), reports
    annotations = [x for x in r.stdout.splitlines() if x.startswith("::")]
    assert len(annotations) == 23 and annotations[-2].endswith("990 more, from stdout:11:2 to stdout:1000:2")
    assert annotations[-1] == ("::error file=out.log,line=11,col=1,title=secret leaked::"
                               "TOKEN (raw): 15 more, from out.log:11:1 to out.log:25:1")
    assert annotations[11].startswith("::error file=out.log,line=1,col=1,title=secret leaked::")
    assert "1026 leaks of secrets (1001 in the output, masked; 25 in artifacts)" in r.stderr
    log = _log_path(proj)
    recs = _records(log)
    leaks = [x for x in recs if x["event"] == "leak"]
    single = [x for x in leaks if "offset" in x]
    counted = {x.get("stream") or x.get("path"): x for x in leaks if "count" in x}
    assert len(single) == 21
    assert [x["offset"] for x in single if x.get("stream") == "stdout"] == [i * line + 1 for i in range(10)]
    assert [(x["line"], x["col"]) for x in single if x.get("path") == "out.log"] == [(i + 1, 1) for i in range(10)]
    assert counted["stdout"]["count"] == 990 and counted["stdout"]["first_offset"] == 10 * line + 1
    assert counted["stdout"]["last_offset"] == 999 * line + 1
    assert (counted["stdout"]["first_line"], counted["stdout"]["first_col"]) == (11, 2)
    assert (counted["stdout"]["last_line"], counted["stdout"]["last_col"]) == (1000, 2)
    assert counted["out.log"]["count"] == 15 and counted["out.log"]["last_offset"] == 24 * (line - 1)
    assert (counted["out.log"]["last_line"], counted["out.log"]["last_col"]) == (25, 1)
    assert recs[-1]["event"] == "run.exit" and recs[-1]["leaks"] == 1026
    assert _verify(proj, log).status == 0
    _assert_no_values(proj, log)

