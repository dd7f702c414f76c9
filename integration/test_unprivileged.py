"""A run as an unprivileged user (nobody, uid 65534) via setpriv: file delivery works without
root, in the per-user fallback directory on /dev/shm, and nothing is left behind."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

NOBODY = 65534


def _setpriv_prefix():
    setpriv = shutil.which("setpriv")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


@pytest.fixture
def world_dir():
    """A directory nobody can reach (tmp_path lives under a 0700 parent)."""
    d = Path(tempfile.mkdtemp(prefix="sr-it-nobody-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _binary_for_nobody(proj, world_dir, prefix):
    """The binary, reachable by nobody: in place if it can run it, else a 0755 copy."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to uid 65534")
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not installed")
    binary = proj.bin
    probe = subprocess.run([*prefix, str(binary), "--version"], capture_output=True)
    if probe.returncode != 0:
        binary = world_dir / "secrets-run"
        shutil.copy2(proj.bin, binary)
        binary.chmod(0o755)
        probe = subprocess.run([*prefix, str(binary), "--version"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"uid {NOBODY} cannot execute secrets-run here "
                        f"(status {probe.returncode}: {probe.stderr[-300:]!r})")
    return binary


def test_file_delivery_as_nobody(proj, world_dir):
    prefix = _setpriv_prefix()
    binary = _binary_for_nobody(proj, world_dir, prefix)

    home = world_dir / "home"
    work = home / "proj"
    data = home / "data"
    for d in (home, work, data):
        d.mkdir(exist_ok=True)
    value = proj.secret()
    expected = data / "expected"
    expected.write_text(value)
    provider = data / "provider.sh"
    provider.write_text(f"#!/bin/sh\ncat '{expected}'\necho\n")
    provider.chmod(0o755)
    (work / "secrets.yaml").write_text(
        "version: 1\n"
        "defaults: {environment: dev}\n"
        "environments: {dev: {}}\n"
        f"backends: {{p: {{type: exec, command: ['{provider}']}}}}\n"
        "secrets:\n"
        '  NOBODY_TOKEN: {from: "p:x", owner: team-a}\n')
    report = data / "report"
    step = data / "step.sh"
    step.write_text(
        "#!/bin/sh\n"
        f"R='{report}'\n"
        'echo "uid=$(id -u)" >> "$R"\n'
        'echo "SECRETS_DIR=$SECRETS_DIR" >> "$R"\n'
        'echo "file_mode=$(stat -c %a "$NOBODY_TOKEN_FILE")" >> "$R"\n'
        'echo "dir_mode=$(stat -c %a "$SECRETS_DIR")" >> "$R"\n'
        f'if cmp -s "$NOBODY_TOKEN_FILE" \'{expected}\'; then echo same=yes; else echo same=no; fi >> "$R"\n')
    step.chmod(0o755)
    for p in [home, *home.rglob("*")]:
        os.chown(p, NOBODY, NOBODY, follow_symlinks=False)
    expected.chmod(0o600)

    r = _run_with(proj, binary, prefix, step, work, home)
    assert r.status == 0, r
    rep = dict(l.split("=", 1) for l in report.read_text().splitlines())
    assert rep["uid"] == str(NOBODY)
    assert rep["same"] == "yes"
    assert rep["file_mode"] == "400"
    assert rep["dir_mode"] == "700"
    assert rep["SECRETS_DIR"].startswith(f"/dev/shm/secrets-run-{NOBODY}/")
    assert not os.path.lexists(rep["SECRETS_DIR"]), "secrets directory left after the run"


def _run_with(proj, binary, prefix, step, work, home):
    """proj.run with another binary path, a clean per-user runtime and state."""
    saved = proj.bin
    proj.bin = binary
    try:
        return proj.run("run", "--", step, prefix=prefix, cwd=work,
                        env={"XDG_RUNTIME_DIR": None, "HOME": str(home),
                             "XDG_STATE_HOME": str(home / "state"),
                             "XDG_CONFIG_HOME": str(home / "config")})
    finally:
        proj.bin = saved


def test_store_plan_apply_and_run_as_nobody(proj, world_dir):
    """The embedded store, apply and the rotation gate work for a user without privileges:
    the key and store are theirs (0600), and a stored generated secret reaches the step."""
    prefix = _setpriv_prefix()
    binary = _binary_for_nobody(proj, world_dir, prefix)
    home = world_dir / "home"
    work = home / "proj"
    work.mkdir(parents=True)
    (work / "secrets.yaml").write_text(
        "version: 1\n"
        "defaults: {environment: dev, backend: local}\n"
        "environments: {dev: {}}\n"
        "backends: {local: {type: file}}\n"
        "secrets:\n"
        "  KEPT: {generate: {length: 32, store: true}, owner: team-a, rotation: {max_age: 30d}}\n")
    for p in [home, *home.rglob("*")]:
        os.chown(p, NOBODY, NOBODY, follow_symlinks=False)
    env = {"XDG_RUNTIME_DIR": None, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
           "XDG_CONFIG_HOME": str(home / "config")}
    saved = proj.bin
    proj.bin = binary
    try:
        assert proj.run("store", "init", prefix=prefix, cwd=work, env=env).status == 0
        assert proj.run("plan", prefix=prefix, cwd=work, env=env).status == 2
        r = proj.run("apply", prefix=prefix, cwd=work, env=env)
        assert r.status == 0 and "KEPT: created" in r.stdout, r
        assert proj.run("plan", prefix=prefix, cwd=work, env=env).status == 0
        r = proj.run("run", "--", "sh", "-c", 'test "$(wc -c < "$KEPT_FILE")" -eq 32 && id -u',
                     prefix=prefix, cwd=work, env=env)
        assert r.status == 0 and r.stdout.strip() == str(NOBODY), r
    finally:
        proj.bin = saved
    store = work / ".secrets-run" / "store"
    key = home / "config" / "secrets-run" / "store.key"
    for f in (store, key):
        st = f.stat()
        assert st.st_uid == NOBODY and (st.st_mode & 0o777) == 0o600, f
