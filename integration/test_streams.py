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
