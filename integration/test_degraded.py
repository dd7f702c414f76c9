"""Degraded mode is tested, not assumed: secrets-run inside a secrets-run step meets what a
locked-down container does (its seccomp filter refuses namespace clone flags). `auto` then
runs with the layers that remain and says so in one line; `strict` refuses with 125."""

GEN = "TOK: {generate: {length: 24}}"


def _sandbox_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("secrets-run: sandbox:")]


def test_auto_degrades_with_one_line_when_namespaces_are_refused(proj):
    proj.standard_manifest(GEN)
    step = proj.script("""
        report INNER_PID $$
        report SECRET_OK "$(test -s "$TOK_FILE" && echo yes)"
        report SECCOMP "$(grep '^Seccomp:' /proc/self/status | tr -d ' \\t' | cut -d: -f2)"
        """)
    r = proj.run("--", proj.bin, "--", step)
    assert r.status == 0, r.stderr
    lines = _sandbox_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert "missing: mount,pid,ipc,uts,proc,secrets-tmpfs" in lines[0]
    assert "active: caps,seccomp" in lines[0]
    assert "cannot create namespaces" in lines[0]
    rep = proj.report()
    assert rep["SECRET_OK"] == "yes"
    assert rep["SECCOMP"] == "2"          # the inner run still filters syscalls
    assert int(rep["INNER_PID"]) > 2      # a plain child of the inner supervisor


def test_strict_refuses_when_namespaces_are_refused(proj):
    proj.standard_manifest(GEN)
    marker = proj.data / "ran"
    r = proj.run("--", proj.bin, "--sandbox", "strict", "--", "touch", marker)
    assert r.status == 125, r.stderr
    assert "sandbox: cannot create namespaces" in r.stderr
    assert "strict" in r.stderr
    assert not marker.exists()


def test_network_off_refuses_without_a_network_namespace(proj):
    proj.standard_manifest(GEN)
    r = proj.run("--", proj.bin, "--network", "off", "--", "true")
    assert r.status == 125, r.stderr
    assert "--network off needs a network namespace" in r.stderr


def test_full_sandbox_prints_no_line_by_default(proj):
    proj.standard_manifest(GEN)
    r = proj.run("--", "true")
    assert r.status == 0, r.stderr
    assert _sandbox_lines(r.stderr) == []
    r = proj.run("-v", "--", "true")
    assert any("missing: none" in l for l in _sandbox_lines(r.stderr)), r.stderr


def test_dry_run_shows_the_layers(proj):
    import json
    proj.standard_manifest(GEN)
    r = proj.run("--dry-run", "--format", "json")
    assert r.status == 0, r.stderr
    sb = json.loads(r.stdout)["sandbox"]
    assert sb["mode"] == "auto"
    for layer in ("mount", "pid", "ipc", "uts", "proc", "secrets-tmpfs", "caps", "seccomp"):
        assert layer in sb["active"]
    assert sb["missing"] == []
    r = proj.run("--dry-run", "--sandbox", "off")
    assert "sandbox: off" in r.stdout


def test_foreign_abi_syscall_is_killed_and_reported(proj, tmp_path):
    """A 32-bit system call (int 0x80) would bypass an x86_64-only filter: the sandbox's
    architecture check kills it with SIGSYS, and the report says so."""
    import platform
    import shutil
    import subprocess
    if platform.machine() != "x86_64" or not shutil.which("cc"):
        import pytest
        pytest.skip("needs x86_64 and cc")
    src = tmp_path / "i386.c"
    src.write_text('int main(void) { int r; __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20)); return 0; }\n')
    exe = tmp_path / "i386"
    subprocess.run(["cc", "-o", str(exe), str(src)], check=True)
    proj.standard_manifest(GEN)
    r = proj.run("--", exe)
    assert r.status == 128 + 31, r.stderr
    assert "sandbox violation" in r.stderr and "SIGSYS" in r.stderr
    r = proj.run("--sandbox", "off", "--", exe)
    assert r.status == 0, r.stderr


def _run_as_nobody_without_user_namespaces(binary, args, cwd, env):
    """Runs binary as uid 65534 inside a user namespace whose user.max_user_namespaces is 0,
    so its own clone(CLONE_NEWUSER) fails with ENOSPC — the limit a hardened host sets.
    Root writes the child's two-id map itself (no newuidmap needed). Returns (status, stderr)."""
    import ctypes
    import os
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUSER = 0x10000000
    go_r, go_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)
            os.close(err_r)
            if libc.unshare(CLONE_NEWUSER) != 0:
                os._exit(90)
            os.write(err_w, b"U")            # tell the parent to write our maps
            if os.read(go_r, 1) != b"G":
                os._exit(91)
            with open("/proc/sys/user/max_user_namespaces", "w") as f:
                f.write("0")
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.dup2(err_w, 2)
            os.chdir(cwd)
            os.execve(binary, [binary, *args], env)
        except BaseException as e:     # say what went wrong before exec
            os.write(err_w, f"test setup: {e!r}\n".encode())
        finally:
            os._exit(92)
    os.close(go_r)
    os.close(err_w)
    assert os.read(err_r, 1) == b"U"
    for name, text in (("uid_map", "0 0 1\n65534 65534 1\n"), ("gid_map", "0 0 1\n65534 65534 1\n")):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)
    os.write(go_w, b"G")
    os.close(go_w)
    chunks = []
    while True:
        b = os.read(err_r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(err_r)
    _, wstatus = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wstatus), b"".join(chunks).decode(errors="replace")


def test_unprivileged_run_degrades_when_user_namespaces_are_limited(proj):
    import os
    import shutil
    import tempfile
    from pathlib import Path
    import pytest
    if os.geteuid() != 0:
        pytest.skip("needs root to map a second id into the test's user namespace")
    # a copy of the binary and a project uid 65534 can reach (pytest's tmp dirs are 0700)
    tmp_path = Path(tempfile.mkdtemp(prefix="secrets-run-userns-"))
    try:
        _degrade_as_nobody(proj, tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _degrade_as_nobody(proj, tmp_path):
    import shutil
    bindir = tmp_path / "bin"
    bindir.mkdir()
    binary = bindir / "secrets-run"
    shutil.copy(proj.bin, binary)
    for p in (tmp_path, bindir, binary):
        p.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)
    (work / "secrets.yaml").write_text("version: 1\ndefaults: {environment: dev}\nsecrets:\n"
                                       "  TOK: {generate: {length: 24}}\n")
    (work / "secrets.yaml").chmod(0o644)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LC_ALL": "C"}
    status, err = _run_as_nobody_without_user_namespaces(
        str(binary), ["--", "sh", "-c", 'test -s "$TOK_FILE"'], str(work), env)
    assert status == 0, err
    lines = [l for l in err.splitlines() if l.startswith("secrets-run: sandbox:")]
    assert len(lines) == 1, err
    assert "missing: user,mount,pid,ipc,uts,proc,secrets-tmpfs" in lines[0]
    assert "max_user_namespaces" in lines[0]
    status, err = _run_as_nobody_without_user_namespaces(
        str(binary), ["--sandbox", "strict", "--", "true"], str(work), env)
    assert status == 125, err
    assert "max_user_namespaces" in err and "strict" in err
