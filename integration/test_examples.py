"""The runnable examples under examples/ run here and end as their READMEs say: each
example's run.sh is started with the binary under test and a clean environment, and its output
is checked (and fed to the leak guard of the `proj` fixture, for the values the test knows).
Also: every example directory has a README.md that the main README links to.

The examples need what packaging/install-deps.sh installs (PostgreSQL and psycopg2 for
examples/postgres, openssl for the Vault test double); a missing one fails the test, it is not
skipped: CI must run every example."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RUNNABLE = ["python-project", "postgres", "vault-jwt"]


def run_example(proj, name, env=None, timeout=120):
    e = dict(proj.env)
    e["SECRETS_RUN_BIN"] = str(proj.bin)
    e.update(env or {})
    r = subprocess.run([str(EXAMPLES / name / "run.sh")], env=e, cwd=str(proj.dir),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    proj.outputs.append((r.stdout, r.stderr))
    out = (r.stdout + r.stderr).decode("utf-8", "surrogateescape")
    return r.returncode, out


def test_python_project(proj):
    token = proj.secret()          # the CI secret variable; the leak guard checks every output
    status, out = run_example(proj, "python-project", {"EXAMPLE_API_TOKEN": token})
    assert status == 0, out
    first, _, leaky = out.partition("PAYMENTS_DEBUG=1")
    assert "3 passed" in first, out
    assert "Bearer [REDACTED:API_TOKEN]" in leaky, out
    assert re.search(r"leak: stdout(\+stderr)?:1:\d+ \(raw\): API_TOKEN", leaky), out
    assert "== the step exited 123" in leaky, out


def test_postgres(proj):
    status, out = run_example(proj, "postgres")
    assert status == 0, out
    assert re.search(r"step: PostgreSQL \S+ on 127\.0\.0\.1:\d+", out), out
    assert "4 passed" in out, out
    assert "step: PostgreSQL stopped" in out, out
    if os.geteuid() == 0:
        assert "running as uid 65534" in out, out


def test_vault_jwt(proj):
    status, out = run_example(proj, "vault-jwt")
    assert status == 0, out
    assert "0 secrets would be delivered" in out, out        # the merge-request pipeline
    for name in ["API_KEY", "DB_USERNAME", "DB_PASSWORD"]:
        assert re.search(rf"deploy: {name}_FILE is \S+ \([1-9]\d* bytes\)", out), out
    assert "VAULT_ID_TOKEN is not in my environment" in out, out
    assert "intact" in out, out
    assert "NOT OK" not in out and out.count("ok: ") == 5, out


@pytest.mark.parametrize("name", RUNNABLE)
def test_example_is_documented_and_linked(name):
    readme = EXAMPLES / name / "README.md"
    assert readme.is_file(), f"{readme} is missing"
    text = readme.read_text()
    assert f"examples/{name}/run.sh" in text, f"{readme} does not say how to run it"
    assert f"(examples/{name}/)" in (ROOT / "README.md").read_text(), \
        f"README.md does not link examples/{name}/"
