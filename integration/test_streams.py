"""The step's stdin, stdout and stderr: stdin passes through; stdout and stderr stay separate and
are forwarded byte for byte (binary data, NUL bytes, invalid UTF-8, no final newline)."""

import os

GEN = "TOKEN: {generate: {length: 32}}"


def _blob(size, seed_byte):
    # Random bytes plus runs that tend to break naive line/text handling.
    return (b"\0" * 17 + os.urandom(size) + b"\r\n\x1b[31mred\x1b[0m\n\xff\xfe\xc3(" +
            bytes(range(256)) + b"no final newline" + bytes([seed_byte]))


def _only_own_lines(extra):
    """Whatever secrets-run adds to stderr besides the step's bytes must be its own lines."""
    return all(l.startswith(b"secrets-run") for l in extra.splitlines() if l)


def test_binary_stdout_and_stderr_byte_exact(proj):
    proj.standard_manifest(GEN)
    out_blob, err_blob = _blob(300_000, 1), _blob(200_000, 2)
    (proj.data / "out.bin").write_bytes(out_blob)
    (proj.data / "err.bin").write_bytes(err_blob)
    step = proj.script("""
        cat "$DATA/out.bin"
        cat "$DATA/err.bin" >&2
        """)
    r = proj.run("run", "--", step, binary=True)
    assert r.status == 0, r
    assert r.stdout == out_blob, f"stdout differs ({len(r.stdout)} bytes, expected {len(out_blob)})"
    assert err_blob in r.stderr, "stderr is not passed through byte-exactly"
    assert _only_own_lines(r.stderr.replace(err_blob, b"", 1))


def test_concurrent_large_output_on_both_streams(proj):
    proj.standard_manifest(GEN)
    out_blob, err_blob = _blob(2_000_000, 3), _blob(1_500_000, 4)
    (proj.data / "out.bin").write_bytes(out_blob)
    (proj.data / "err.bin").write_bytes(err_blob)
    step = proj.script("""
        cat "$DATA/out.bin" &
        cat "$DATA/err.bin" >&2 &
        wait
        """)
    r = proj.run("run", "--", step, binary=True, timeout=120)
    assert r.status == 0, r
    assert r.stdout == out_blob, f"stdout differs ({len(r.stdout)} bytes, expected {len(out_blob)})"
    assert err_blob in r.stderr
    assert _only_own_lines(r.stderr.replace(err_blob, b"", 1))


def test_stdout_and_stderr_are_separate(proj):
    proj.standard_manifest(GEN)
    r = proj.run("run", "--", "sh", "-c", "printf 'to-out'; printf 'to-err' >&2")
    assert r.status == 0, r
    assert r.stdout == "to-out"
    assert "to-err" in r.stderr and "to-out" not in r.stderr


def test_stdin_passes_through(proj):
    proj.standard_manifest(GEN)
    data = _blob(100_000, 5)
    r = proj.run("run", "--", "cat", input=data, binary=True)
    assert r.status == 0, r
    assert r.stdout == data


def test_merged_streams_keep_the_steps_order(proj):
    """When secrets-run's stdout and stderr are one file (2>&1, a CI job log), the step gets
    one pipe for both: 50 interleaved stdout and stderr lines land in the file exactly as the
    bare step writes them, and a leak in it is reported on stdout+stderr."""
    import subprocess
    value = proj.secret()
    proj.standard_manifest('TOKEN: {from: "ci:SRC", owner: t}', backends="ci: {type: env}")
    # the step reads its secret: one it never opened would be named "granted but not read"
    step = proj.script("""
        [ -z "$TOKEN_FILE" ] || cat "$TOKEN_FILE" > /dev/null
        i=0
        while [ $i -lt 50 ]; do echo "out $i"; echo "err $i" >&2; i=$((i + 1)); done
        """)
    bare, wrapped = proj.data / "bare.log", proj.data / "wrapped.log"
    with open(bare, "wb") as f:
        subprocess.run([str(step)], stdout=f, stderr=subprocess.STDOUT, check=True)
    with open(wrapped, "wb") as f:
        p = subprocess.run(proj._argv(("run", "-q", "--", str(step)), None), cwd=str(proj.dir),
                           env=proj._env({"SRC": value}), stdout=f, stderr=subprocess.STDOUT)
    assert p.returncode == 0
    assert wrapped.read_bytes() == bare.read_bytes(), "the order of the step's writes changed"
    leaky = proj.script('echo before; cat "$TOKEN_FILE"; echo; echo after >&2\n')
    with open(wrapped, "wb") as f:
        p = subprocess.run(proj._argv(("run", "--", str(leaky)), None), cwd=str(proj.dir),
                           env=proj._env({"SRC": value}), stdout=f, stderr=subprocess.STDOUT)
    text = wrapped.read_text()
    assert p.returncode == 123 and value not in text
    assert "before\n[REDACTED:TOKEN]\nafter\n" in text, text
    assert "leak: stdout+stderr:2:1 (raw): TOKEN" in text, text
