"""Exit status of `run` (DESIGN §8), --timeout, signal forwarding, and what a crash leaves
behind (the step dies with secrets-run; the next start sweeps the directory)."""

import json
import os
import signal

import pytest

from util import processes_with_arg, wait_for

GEN = "TOKEN: {generate: {length: 32}}"


def grandchild(tag, ignore_term=False):
    """Shell text starting a background process of the step (same process group) whose
    command line carries tag, so the test can tell whether it outlived the step."""
    trap = "trap '' TERM; " if ignore_term else ""
    return f"sh -c '{trap}while :; do sleep 0.1; done' {tag} &\n"


def unique_tag(proj):
    tag = f"grandchild-{os.urandom(6).hex()}"
    proj.tags.append(tag)     # killed at teardown if it survives
    return tag


@pytest.mark.parametrize("cmd,status", [
    (["true"], 0),
    (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "exit 77"], 77),
    (["sh", "-c", "kill -TERM $$"], 143),
    (["sh", "-c", "kill -KILL $$"], 137),
])
def test_command_status_passes_through(proj, cmd, status):
    proj.standard_manifest(GEN)
    r = proj.run("run", "--", *cmd)
    assert r.status == status, r


@pytest.mark.parametrize("opts", [[], ["--only", "TOKEN"], ["-e", "dev", "--timeout", "1m"]])
def test_implicit_run_without_subcommand_word(proj, opts):
    proj.standard_manifest(GEN)
    step = proj.script('report token "${TOKEN_FILE:+yes}"\nexit 3\n')
    r = proj.run(*opts, step)
    assert r.status == 3, r
    assert proj.report()["token"] == "yes"


def test_not_executable_is_126(proj):
    proj.standard_manifest(GEN)
    step = proj.script("exit 0\n", mode=0o644)
    r = proj.run("run", "--", step)
    assert r.status == 126, r
    assert "secrets-run: error:" in r.stderr


def test_directory_as_command_is_126(proj):
    proj.standard_manifest(GEN)
    r = proj.run("run", "--", proj.data)
    assert r.status == 126, r


@pytest.mark.parametrize("cmd", ["no-such-command-{}", "./no-such-file-{}"])
def test_not_found_is_127(proj, cmd):
    proj.standard_manifest(GEN)
    r = proj.run("run", "--", cmd.format(os.urandom(4).hex()))
    assert r.status == 127, r
    assert "secrets-run: error:" in r.stderr


def test_timeout_is_124_and_prompt(proj):
    proj.standard_manifest(GEN)
    r = proj.run("run", "--timeout", "1s", "--", "sleep", "30", timeout=60)
    assert r.status == 124, r
    assert r.elapsed < 10, f"took {r.elapsed:.1f} s for a 1 s timeout"


def test_timeout_sends_term_first(proj):
    proj.standard_manifest(GEN)
    marker = proj.data / "got-term"
    step = proj.script(f"""
        trap 'echo TERM > "{marker}"; exit 0' TERM
        while :; do sleep 0.1; done
        """)
    r = proj.run("run", "--timeout", "1s", "--", step, timeout=60)
    assert r.status == 124, r
    assert marker.exists(), "the step never saw SIGTERM"
    assert r.elapsed < 5, f"a step that exits on TERM should not wait for the grace ({r.elapsed:.1f} s)"


def test_timeout_kills_a_step_that_ignores_term_after_grace(proj):
    proj.standard_manifest(GEN)
    tag = unique_tag(proj)
    step = proj.script(grandchild(tag, ignore_term=True) + """
        trap '' TERM
        while :; do sleep 0.2; done
        """)
    r = proj.run("run", "--timeout", "1s", "--", step, timeout=90)
    assert r.status == 124, r
    assert 4.0 <= r.elapsed < 20, f"expected ~1 s + 5 s grace, took {r.elapsed:.1f} s"
    assert wait_for(lambda: not processes_with_arg(str(step)), timeout=5), \
        "the step survived the timeout"
    assert wait_for(lambda: not processes_with_arg(tag), timeout=5), \
        "a process of the step's group survived the timeout"


def test_invalid_timeout_is_usage_error(proj):
    proj.standard_manifest(GEN)
    marker = proj.data / "ran"
    r = proj.run("run", "--timeout", "soon", "--", "touch", marker)
    assert r.status == 125, r
    assert not marker.exists()
    assert "secrets-run: error:" in r.stderr


FORWARDED = ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2"]


@pytest.mark.parametrize("name", FORWARDED)
def test_signal_forwarded_to_step(proj, name):
    proj.standard_manifest(GEN)
    marker, ready = proj.data / "got-signal", proj.data / "ready"
    step = proj.script(f"""
        trap 'echo {name} > "{marker}"; exit 7' {name}
        touch "{ready}"
        while :; do sleep 0.1; done
        """)
    p = proj.spawn("run", "--", step)
    if not wait_for(ready.exists, timeout=20):
        p.signal(signal.SIGKILL)
        pytest.fail(f"the step did not start: {p.wait()!r}")
    p.signal(getattr(signal, "SIG" + name))
    r = p.wait(timeout=30)
    assert r.status == 7, r
    assert marker.read_text().strip() == name


def test_sigterm_to_secrets_run_kills_untrapping_step_143(proj):
    proj.standard_manifest(GEN)
    ready = proj.data / "ready"
    tag = unique_tag(proj)
    step = proj.script(grandchild(tag) + f"""
        touch "{ready}"
        while :; do sleep 0.1; done
        """)
    p = proj.spawn("run", "--", step)
    if not wait_for(ready.exists, timeout=20):
        p.signal(signal.SIGKILL)
        pytest.fail(f"the step did not start: {p.wait()!r}")
    p.signal(signal.SIGTERM)
    r = p.wait(timeout=30)
    assert r.status == 143, r
    assert wait_for(lambda: not processes_with_arg(str(step)), timeout=5)
    assert wait_for(lambda: not processes_with_arg(tag), timeout=5), \
        "SIGTERM was not forwarded to the step's whole process group"


def _crash_during_step(proj):
    """Starts a step (with a background process in its group), kill -9s secrets-run while the
    step runs; returns (step path, tag, the crashed run's $SECRETS_DIR)."""
    proj.standard_manifest(GEN)
    ready = proj.data / "ready"
    tag = unique_tag(proj)
    step = proj.script(grandchild(tag) + f"""
        report SECRETS_DIR "$SECRETS_DIR"
        touch "{ready}"
        while :; do sleep 0.1; done
        """)
    p = proj.spawn("run", "--", step)
    if not wait_for(ready.exists, timeout=20):
        p.signal(signal.SIGKILL)
        pytest.fail(f"the step did not start: {p.wait()!r}")
    leftover = proj.report()["SECRETS_DIR"]
    assert processes_with_arg(str(step)), "cannot see the step's process"
    p.signal(signal.SIGKILL)
    r = p.wait(timeout=30)
    assert r.status == -signal.SIGKILL
    return step, tag, leftover


def test_kill_9_of_secrets_run_kills_the_step(proj):
    step, tag, _ = _crash_during_step(proj)
    step_gone = wait_for(lambda: not processes_with_arg(str(step)), timeout=10)
    group_gone = wait_for(lambda: not processes_with_arg(tag), timeout=10)
    proj.run("run", "true")            # sweeps the crashed run's directory (checked below)
    assert step_gone, "the step outlived a kill -9 of secrets-run"
    assert group_gone, \
        "a background process of the step (same process group) outlived a kill -9 of secrets-run"


def test_next_start_sweeps_crashed_runs_directory(proj):
    _, _, leftover = _crash_during_step(proj)
    r = proj.run("run", "true")
    assert r.status == 0, r
    assert not os.path.lexists(leftover), "the next start did not sweep the crashed run's directory"


# ---- 125: secrets-run's own failures; the step never runs ----

def _refused(proj, r, marker):
    assert r.status == 125, r
    assert not marker.exists(), "the step ran although secrets-run failed"
    assert "secrets-run: error:" in r.stderr or "error SR" in r.stderr, r


def test_yaml_syntax_error_is_125_with_position(proj):
    proj.manifest("""
        version: 1
        secrets:
          A: {generate: {length: 32}
        """)
    marker = proj.data / "ran"
    r = proj.run("run", "--", "touch", marker)
    _refused(proj, r, marker)
    assert "secrets.yaml:" in r.stderr and "SR001" in r.stderr


def test_unknown_key_is_125_with_position(proj):
    proj.manifest("""
        version: 1
        defaults: {environment: dev}
        environments: {dev: {}}
        secrets:
          A:
            generate: {length: 32}
            enviroments: [dev]
        """)
    marker = proj.data / "ran"
    r = proj.run("run", "--", "touch", marker)
    _refused(proj, r, marker)
    assert "secrets.yaml:7:5: error SR002" in r.stderr, r


def test_missing_owner_makes_run_refuse(proj):
    value = proj.secret()
    proj.standard_manifest(backends="ci: {type: env}",
                           secrets_block='NO_OWNER: {from: "ci:SRC"}')
    marker = proj.data / "ran"
    r = proj.run("run", "--", "touch", marker, env={"SRC": value})
    _refused(proj, r, marker)
    assert "SR101" in r.stderr or "owner" in r.stderr


def test_failing_exec_backend_is_125_with_provider_stderr(proj):
    token = "provider-failure-" + os.urandom(6).hex()
    provider = proj.data / "failing.sh"
    provider.write_text(f"#!/bin/sh\necho '{token}: permission denied for '\"$1\" >&2\nexit 3\n")
    provider.chmod(0o755)
    proj.standard_manifest(
        backends=f"broken: {{type: exec, command: [{json.dumps(str(provider))}]}}",
        secrets_block='DB_PASSWORD: {from: "broken:db/main", owner: team-db}')
    marker = proj.data / "ran"
    r = proj.run("run", "--", "touch", marker)
    _refused(proj, r, marker)
    assert token in r.stderr, "the provider's stderr is missing from the error"
    assert "DB_PASSWORD" in r.stderr
    assert "broken" in r.stderr


def test_exec_backend_bounded_by_timeout(proj):
    provider = proj.data / "slow.sh"
    provider.write_text("#!/bin/sh\nsleep 60\necho late\n")
    provider.chmod(0o755)
    proj.standard_manifest(
        backends=f"slow: {{type: exec, command: [{json.dumps(str(provider))}], timeout: 2s}}",
        secrets_block='SLOW_SECRET: {from: "slow:x", owner: t}')
    marker = proj.data / "ran"
    r = proj.run("run", "--", "touch", marker, timeout=90)
    _refused(proj, r, marker)
    assert r.elapsed < 20, f"the 2 s backend timeout took {r.elapsed:.1f} s"
    assert "SLOW_SECRET" in r.stderr
    assert wait_for(lambda: not processes_with_arg(str(provider)), timeout=5), \
        "the provider outlived its timeout"


@pytest.mark.parametrize("with_backend", [False, True])
def test_out_of_scope_only_is_policy_error(proj, with_backend):
    block = ["DEV_TOKEN: {generate: {length: 32}, environments: [dev]}",
             "PROD_TOKEN: {generate: {length: 32}, environments: [prod], approved_by: [alice]}"]
    if with_backend:   # a declared backend must not change the outcome
        block.append('CI_TOKEN: {from: "ci:CI_TOKEN_SRC", owner: t}')
    proj.standard_manifest("\n".join(block),
                           backends="ci: {type: env}" if with_backend else None)
    marker = proj.data / "ran"
    r = proj.run("run", "--only", "PROD_TOKEN", "--", "touch", marker,
                 env={"CI_TOKEN_SRC": proj.secret()})
    _refused(proj, r, marker)
    assert "PROD_TOKEN" in r.stderr
    assert "environment" in r.stderr.lower(), "the error should name the rule (environment)"


def test_only_unknown_secret_is_125(proj):
    proj.standard_manifest(GEN)
    marker = proj.data / "ran"
    r = proj.run("run", "--only", "NO_SUCH_SECRET", "--", "touch", marker)
    _refused(proj, r, marker)
    assert "NO_SUCH_SECRET" in r.stderr


def test_unknown_option_is_125_one_error_line(proj):
    proj.standard_manifest(GEN)
    marker = proj.data / "ran"
    r = proj.run("run", "--no-such-option", "--", "touch", marker)
    _refused(proj, r, marker)
    errors = [l for l in r.stderr.splitlines() if l.startswith("secrets-run: error:")]
    assert len(errors) == 1, r


def test_missing_command_is_125(proj):
    proj.standard_manifest(GEN)
    r = proj.run("run")
    assert r.status == 125, r
    assert "secrets-run: error:" in r.stderr
