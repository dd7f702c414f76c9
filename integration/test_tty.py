"""--tty: with a pty the step sees a terminal (isatty, colours), its stdout and stderr are one
stream, and that stream is redacted like any other."""

import re

GENERATED = "TOKEN: {generate: {length: 32}}"


def test_tty_always_gives_a_terminal_and_redacts_the_single_stream(proj):
    proj.standard_manifest(GENERATED)
    step = proj.script("""
        test -t 0 && report STDIN_TTY yes
        test -t 1 && report STDOUT_TTY yes
        test -t 2 && report STDERR_TTY yes
        printf '\\033[31mred\\033[0m\\n'
        printf 'err: %s\\n' "$(cat "$TOKEN_FILE")" >&2
        """)
    r = proj.run("--tty", "always", step, binary=True)
    assert r.status == 123, r.stderr
    assert proj.report() == {"STDIN_TTY": "yes", "STDOUT_TTY": "yes", "STDERR_TTY": "yes"}
    # the step's stderr arrives on our stdout (one stream), masked; colours pass untouched
    assert b"err: [REDACTED:TOKEN]" in r.stdout
    assert b"\033[31mred\033[0m" in r.stdout
    assert re.search(rb"leak: stdout:\d+:\d+ \(raw\): TOKEN", r.stderr)


def test_tty_always_passes_stdin_to_the_step(proj):
    proj.standard_manifest(GENERATED)
    step = proj.script("""
        read line
        report GOT "$line"
        """)
    r = proj.run("--tty", "always", step, input="hello from stdin\n")
    assert r.status == 0, r.stderr
    assert proj.report()["GOT"] == "hello from stdin"


def test_tty_never_and_auto_without_a_terminal_keep_pipes(proj):
    proj.standard_manifest(GENERATED)
    step = proj.script("""
        if test -t 1; then report MODE_$1 tty; else report MODE_$1 pipe; fi
        echo to-stderr >&2
        """)
    for mode in ("never", "auto"):
        r = proj.run("--tty", mode, step, mode)
        assert r.status == 0, r.stderr
        assert "to-stderr" in r.stderr and "to-stderr" not in r.stdout
    assert proj.report() == {"MODE_never": "pipe", "MODE_auto": "pipe"}


def test_tty_rejects_an_unknown_mode(proj):
    proj.standard_manifest(GENERATED)
    r = proj.run("--tty", "sometimes", "true")
    assert r.status == 125
    assert "--tty" in r.stderr
