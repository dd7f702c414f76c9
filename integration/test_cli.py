"""The command line outside of running a step: --version/--help, `--` forcing run, --dry-run,
manifest discovery, and `check` (exit codes, compiler-style findings, JSON, GitHub annotations)."""

import json
import os
import re

import pytest

GEN = "TOKEN: {generate: {length: 32}}"
SUBCOMMANDS = ["run", "check", "plan", "apply", "rotate", "redact", "scan", "store", "audit"]


@pytest.mark.parametrize("args", [["--version"], ["version"]])
def test_version(proj, project_version, args):
    r = proj.run(*args, cwd=proj.data)
    assert r.status == 0, r
    assert project_version and project_version in r.stdout


@pytest.mark.parametrize("args", [["--help"], ["help"]])
def test_help_lists_subcommands(proj, args):
    r = proj.run(*args, cwd=proj.data)
    assert r.status == 0, r
    for sub in SUBCOMMANDS:
        assert re.search(rf"\b{sub}\b", r.stdout), f"--help does not mention {sub}"


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_subcommand_help(proj, sub):
    r = proj.run(sub, "--help", cwd=proj.data)   # no manifest needed for help
    assert r.status == 0, r
    assert r.stdout.strip(), f"{sub} --help printed nothing on stdout"


def test_double_dash_forces_run(proj):
    proj.standard_manifest(GEN)
    bindir = proj.data / "bin"
    bindir.mkdir()
    fake = bindir / "check"
    fake.write_text("#!/bin/sh\nexit 5\n")
    fake.chmod(0o755)
    r = proj.run("--", "check", env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert r.status == 5, r


# ---- --dry-run ----

def test_dry_run_fetches_lists_and_runs_nothing(proj):
    value = proj.secret()
    provider = proj.provider({"a": value})
    proj.standard_manifest(
        backends=f"p: {{type: exec, command: [{json.dumps(str(provider))}]}}",
        secrets_block="""
            FILE_SECRET: {from: "p:a", owner: t}
            FD_SECRET: {generate: {length: 32}, deliver: fd}
            PROD_SECRET: {generate: {length: 32}, environments: [prod], approved_by: [alice]}
            """)
    marker = proj.data / "ran"
    r = proj.run("run", "--dry-run", "--", "touch", marker)
    assert r.status == 0, r
    assert not marker.exists(), "--dry-run ran the command"
    lines = r.output.splitlines()
    for name, how in [("FILE_SECRET", "file"), ("FD_SECRET", "fd")]:
        assert any(name in l and re.search(rf"\b{how}\b", l) for l in lines), \
            f"--dry-run does not list {name} with delivery {how}"
    assert "PROD_SECRET" not in r.output, "--dry-run lists an out-of-scope secret"


def test_dry_run_still_fetches(proj):
    provider = proj.data / "failing.sh"
    provider.write_text("#!/bin/sh\necho unreachable-store >&2\nexit 1\n")
    provider.chmod(0o755)
    proj.standard_manifest(
        backends=f"p: {{type: exec, command: [{json.dumps(str(provider))}]}}",
        secrets_block='X_SECRET: {from: "p:x", owner: t}')
    marker = proj.data / "ran"
    r = proj.run("run", "--dry-run", "--", "touch", marker)
    assert r.status == 125, r
    assert not marker.exists()
    assert "X_SECRET" in r.stderr


# ---- manifest discovery ----

def _manifest_for(proj, path, as_name):
    return proj.standard_manifest(f"{as_name}: {{generate: {{length: 32}}}}", path=path)


def _which_manifest(proj, names, **kw):
    step = proj.script("".join(f'report {n} "${{{n}_FILE+set}}"\n' for n in names))
    r = proj.run("run", "--", step, **kw)
    assert r.status == 0, r
    rep = proj.report()
    (proj.data / "report").unlink()
    return {n for n in names if rep.get(n) == "set"}


def test_discovery_in_working_directory(proj):
    _manifest_for(proj, proj.dir / "secrets.yaml", "FROM_CWD")
    assert _which_manifest(proj, ["FROM_CWD"]) == {"FROM_CWD"}


def test_discovery_in_nearest_parent(proj):
    _manifest_for(proj, proj.dir / "secrets.yaml", "FROM_TOP")
    _manifest_for(proj, proj.dir / "a" / "secrets.yaml", "FROM_NEAREST")
    deep = proj.dir / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert _which_manifest(proj, ["FROM_TOP", "FROM_NEAREST"], cwd=deep) == {"FROM_NEAREST"}


def test_discovery_env_var_beats_working_directory(proj):
    _manifest_for(proj, proj.dir / "secrets.yaml", "FROM_CWD")
    other = _manifest_for(proj, proj.data / "elsewhere.yaml", "FROM_ENV")
    got = _which_manifest(proj, ["FROM_CWD", "FROM_ENV"],
                          env={"SECRETS_RUN_MANIFEST": str(other)})
    assert got == {"FROM_ENV"}


def test_discovery_flag_beats_env_var(proj):
    _manifest_for(proj, proj.dir / "secrets.yaml", "FROM_CWD")
    env_m = _manifest_for(proj, proj.data / "env.yaml", "FROM_ENV")
    flag_m = _manifest_for(proj, proj.data / "flag.yaml", "FROM_FLAG")
    names = ["FROM_CWD", "FROM_ENV", "FROM_FLAG"]
    for flag in ("-f", "--manifest"):
        step = proj.script("".join(f'report {n} "${{{n}_FILE+set}}"\n' for n in names))
        r = proj.run("run", flag, flag_m, "--", step, env={"SECRETS_RUN_MANIFEST": str(env_m)})
        assert r.status == 0, r
        rep = proj.report()
        (proj.data / "report").unlink()
        assert {n for n in names if rep.get(n) == "set"} == {"FROM_FLAG"}, flag


def test_no_manifest_found_is_125(proj):
    empty = proj.data / "empty"
    empty.mkdir()
    marker = proj.data / "ran"
    r = proj.run("run", "--", "touch", marker, cwd=empty)
    assert r.status == 125, r
    assert not marker.exists()
    assert "secrets.yaml" in r.stderr


# ---- check ----

CLEAN = """
    version: 1
    defaults: {environment: dev}
    backends:
      ci: {type: env}
    environments:
      dev: {}
      prod: {}
    secrets:
      API_KEY: {from: "ci:API_KEY_SRC", owner: team-a}
      SESSION: {generate: {length: 32}}
    """

MISSING_OWNER = """
    version: 1
    defaults: {environment: dev}
    backends:
      ci: {type: env}
    environments:
      dev: {}
    secrets:
      GOOD: {from: "ci:GOOD_SRC", owner: team-a}
      ORPHAN: {from: "ci:ORPHAN_SRC"}
    """
ORPHAN_LINE = 9

TYPO = """
    version: 1
    defaults: {environment: dev}
    enviroments:
      dev: {}
    secrets:
      SESSION: {generate: {length: 32}}
    """


def test_check_clean_is_0(proj):
    proj.manifest(CLEAN)
    r = proj.run("check")
    assert r.status == 0, r
    assert "error SR" not in r.output


def test_check_error_finding_is_1_compiler_style(proj):
    proj.manifest(MISSING_OWNER)
    r = proj.run("check")
    assert r.status == 1, r
    m = re.search(r"secrets\.yaml:(\d+):(\d+): error SR101: (.*)", r.stdout)
    assert m, r
    assert int(m.group(1)) == ORPHAN_LINE
    assert int(m.group(2)) >= 1
    assert "ORPHAN" in m.group(3)
    assert "GOOD" not in r.stdout


def test_check_invalid_manifest_is_2_with_suggestion(proj):
    proj.manifest(TYPO)
    r = proj.run("check")
    assert r.status == 2, r
    out = r.output
    m = re.search(r"secrets\.yaml:(\d+):(\d+): error SR002: (.*)", out)
    assert m, r
    assert (int(m.group(1)), int(m.group(2))) == (3, 1)
    assert "enviroments" in m.group(3) and "environments" in m.group(3), "no did-you-mean"


def test_check_unreadable_yaml_is_2(proj):
    proj.manifest("version: 1\nsecrets: [unclosed\n")
    r = proj.run("check")
    assert r.status == 2, r
    assert "SR001" in r.output


def test_check_env_delivery_not_allowed_is_1(proj):
    proj.manifest("""
        version: 1
        defaults: {environment: dev}
        backends: {ci: {type: env}}
        environments: {dev: {}}
        secrets:
          PUSHED: {from: "ci:PUSHED_SRC", owner: t, deliver: env}
        """)
    r = proj.run("check")
    assert r.status == 1, r
    assert re.search(r"secrets\.yaml:6:\d+: error SR102: .*PUSHED", r.stdout), r


@pytest.mark.parametrize("flags", [["-v"], ["-v", "--dry-run"], ["-q"]])
def test_verbose_and_quiet_never_print_values(proj, flags):
    """The autouse leak guard does the asserting: no registered value may appear."""
    a, b = proj.secret(), proj.secret()
    provider = proj.provider({"a": a})
    proj.standard_manifest(
        backends=f"p: {{type: exec, command: [{json.dumps(str(provider))}]}}\nci: {{type: env}}",
        secrets_block="""
            FROM_EXEC: {from: "p:a", owner: t}
            FROM_ENV: {from: "ci:FROM_ENV_SRC", owner: t, deliver: env}
            """,
        policy="allow_env_delivery: true")
    r = proj.run("run", *flags, "--", "true", env={"FROM_ENV_SRC": b})
    assert r.status == 0, r


def test_check_json(proj):
    proj.manifest(MISSING_OWNER)
    r = proj.run("check", "--format", "json")
    assert r.status == 1, r
    findings = json.loads(r.stdout)
    assert isinstance(findings, list) and findings
    for f in findings:
        assert set(f) == {"file", "line", "column", "severity", "id", "message"}, f
    owner = [f for f in findings if f["id"] == "SR101"]
    assert len(owner) == 1
    assert owner[0]["severity"] == "error"
    assert owner[0]["line"] == ORPHAN_LINE
    assert owner[0]["file"].endswith("secrets.yaml")
    assert "ORPHAN" in owner[0]["message"]


def test_check_json_clean_is_empty_array(proj):
    proj.manifest(CLEAN)
    r = proj.run("check", "--format", "json")
    assert r.status == 0, r
    assert json.loads(r.stdout) == []


def test_check_github_annotations(proj):
    proj.manifest(MISSING_OWNER)
    r = proj.run("check", env={"GITHUB_ACTIONS": "true"})
    assert r.status == 1, r
    ann = [l for l in r.output.splitlines() if l.startswith("::error ")]
    assert ann, r
    assert any("file=" in l and f"line={ORPHAN_LINE}" in l and "ORPHAN" in l for l in ann), ann


def test_check_without_github_actions_prints_no_annotations(proj):
    proj.manifest(MISSING_OWNER)
    r = proj.run("check")
    assert not any(l.startswith("::") for l in r.output.splitlines()), r


def test_check_respects_manifest_flag(proj):
    proj.manifest(CLEAN)                               # the discovered one is clean
    bad = proj.manifest(MISSING_OWNER, proj.data / "bad.yaml")
    r = proj.run("check", "-f", bad)
    assert r.status == 1, r
    assert "bad.yaml" in r.stdout
