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
