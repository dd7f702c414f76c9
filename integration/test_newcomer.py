"""What a new user runs into first: a mistyped sub-command or command costs nothing (resolved
before anything is read, fetched or audited: 126/127 naming it, "did you mean" for a near
sub-command), a stage or environment the manifest never names is a warning with the nearest
name, `help TOPIC` refuses an unknown topic with 2, and --format json holds for every
command, errors included ({"error": ..., "hint": ...})."""

import json
import os

import pytest


def provider_manifest(proj):
    """A manifest whose one secret comes from an exec provider that records every call, and
    whose audit log is named: what a run fetched and audited can be seen."""
    calls = proj.data / "provider-calls"
    value = proj.secret()
    provider = proj.provider({"token": value})
    logger = proj.script(f'echo "$@" >> "{calls}"\nexec "{provider}" "$@"\n', name="logging-provider.sh")
    audit = proj.data / "audit.jsonl"
    proj.standard_manifest(
        'TOKEN: {from: "p:token", owner: team}',
        backends=f"p: {{type: exec, command: ['{logger}']}}",
        policy=f"audit_log: {audit}")
    return calls, audit


@pytest.mark.parametrize("word,near", [("chek", "check"), ("pln", "plan"), ("stor", "store"),
                                       ("doctr", "doctor")])
def test_mistyped_subcommand_fetches_nothing_and_suggests(proj, word, near):
    calls, audit = provider_manifest(proj)
    r = proj.run(word)
    assert r.status == 127, r
    assert f"did you mean '{near}'?" in r.stderr, r
    assert f"'{word}'" in r.stderr, r
    assert not calls.exists(), "the backend was asked for a secret"
    assert not audit.exists(), "an audit record was written"
    # the same manifest does fetch and audit for a command that exists
    ok = proj.run("true")
    assert ok.status == 0, ok
    assert calls.exists() and audit.exists()
    assert not proj.leaked()


def test_command_not_found_or_not_executable_costs_nothing(proj):
    calls, audit = provider_manifest(proj)
    missing = proj.run("--", f"no-such-program-{os.urandom(3).hex()}")
    assert missing.status == 127 and "not found" in missing.stderr, missing
    assert "did you mean" not in missing.stderr
    step = proj.script("exit 0\n", mode=0o644)
    plain = proj.run("run", "--", step)
    assert plain.status == 126, plain
    assert str(step) in plain.stderr and "chmod +x" in plain.stderr, plain
    folder = proj.run("run", "--", proj.data)
    assert folder.status == 126 and "directory" in folder.stderr, folder
    crlf = proj.data / "crlf.sh"
    crlf.write_bytes(b"#!/bin/sh\r\nexit 0\r\n")
    crlf.chmod(0o755)
    windows = proj.run("run", "--", crlf)
    assert windows.status == 127 and "Windows line endings" in windows.stderr, windows
    assert not calls.exists(), "the backend was asked for a secret"
    assert not audit.exists(), "an audit record was written"


def test_command_found_in_path_with_executable_bit(proj):
    proj.standard_manifest("TOKEN: {generate: {length: 32}}")
    bindir = proj.data / "bin"
    bindir.mkdir()
    (bindir / "tool").write_text("#!/bin/sh\nexit 0\n")      # not executable: skipped
    later = proj.data / "bin2"
    later.mkdir()
    (later / "tool").write_text("#!/bin/sh\nexit 7\n")
    (later / "tool").chmod(0o755)
    path = f"{bindir}:{later}:/usr/bin:/bin"
    r = proj.run("tool", env={"PATH": path})
    assert r.status == 7, r
    only_plain = proj.run("tool", env={"PATH": f"{bindir}:/usr/bin:/bin"})
    assert only_plain.status == 126 and "not executable" in only_plain.stderr, only_plain


def test_mistyped_stage_and_environment_warn_with_the_nearest_name(proj):
    proj.manifest("""
        version: 1
        defaults: {environment: dev}
        secrets:
          TOKEN: {generate: {length: 32}, stages: [test, deploy], environments: [dev, prod]}
        policy: {require_owner: false}
        """)
    r = proj.run("-s", "tset", "--", "true")
    assert r.status == 0, r
    assert "stage 'tset'" in r.stderr and "did you mean 'test'?" in r.stderr, r
    r = proj.run("-e", "prdo", "-s", "test", "--", "true")
    assert "environment 'prdo'" in r.stderr and "did you mean 'prod'?" in r.stderr, r
    # names the manifest uses are no warning
    # (the step reads its secret: one it never opened would be "granted but not read")
    quiet = proj.run("-s", "deploy", "--", "sh", "-c", 'cat "$TOKEN_FILE" > /dev/null')
    assert quiet.status == 0 and "warning" not in quiet.stderr, quiet


def test_help_topic(proj, secrets_run_bin):
    assert proj.run("help", "check").status == 0
    r = proj.run("help", "bogus")
    assert r.status == 2 and "bogus" in r.stderr, r
    near = proj.run("help", "chek")
    assert near.status == 2 and "did you mean 'check'?" in near.stderr, near


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_format_json_for_version_help_and_errors(proj, project_version):
    v = proj.run("version", "--format", "json")
    assert v.status == 0 and json.loads(v.stdout) == {"version": project_version}, v
    h = proj.run("help", "--format", "json")
    names = [c["name"] for c in json.loads(h.stdout)["commands"]]
    assert "check" in names and "run" in names
    h = proj.run("help", "scan", "--format=json")
    assert json.loads(h.stdout)["command"] == "scan"
    bad = proj.run("help", "chek", "--format", "json")
    assert bad.status == 2
    assert json_lines(bad.stderr) == [{"error": "help: no topic 'chek'", "hint": "did you mean 'check'?"}]
    # an option error said before --format was reached is JSON too
    opt = proj.run("--bogus", "--format", "json")
    assert opt.status == 125
    (err,) = json_lines(opt.stderr)
    assert "--bogus" in err["error"] and err["hint"], err
    typo = proj.run("--format", "json", "chek")
    assert typo.status == 127
    (err,) = json_lines(typo.stderr)
    assert err["hint"] == "did you mean 'check'?", err


def test_format_json_for_scan(proj):
    value = proj.secret()
    secret_file = proj.expect(value, "token")
    (proj.dir / "log.txt").write_text(f"a {value} b\n")
    r = proj.run("scan", "--secret-file", f"TOKEN={secret_file}", "log.txt", "--format", "json")
    assert r.status == 1, r
    doc = json.loads(r.stdout)
    assert doc["leaks"] == 1
    assert doc["found"] == [{"name": "TOKEN", "form": "raw", "path": "log.txt", "offset": 2}]
    assert all("error" in e or "warning" in e for e in json_lines(r.stderr))
    clean = proj.run("scan", "--secret-file", f"TOKEN={secret_file}", str(secret_file.parent / "none"),
                     "--format", "json")
    assert clean.status == 2 and all("error" in e for e in json_lines(clean.stderr)), clean
    assert not proj.leaked()
