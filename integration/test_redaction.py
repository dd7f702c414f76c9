"""Redaction end to end (DESIGN §5, §8; docs/redaction-forms.md): the step's stdout and stderr
pass through the filter, every secret value and each of its encodings is replaced by
[REDACTED:NAME], each leak is reported by name, form, and place as PLACE:LINE:COL (a stream's
name or a file's path; the column in bytes since the line's start), and the step fails
with 123 (or keeps its status with --on-leak warn). Artifacts written during the run are scanned
the same way; `redact` and `scan` expose the matcher directly.

Values are generated at test time: env-backend secrets whose value the test makes, or generate
secrets the step copies to data/ so the test can register them. Every value, and every encoded
form a test expects to be masked, is registered with the fixture's no-value-in-output check.
Failure messages never show a value: diagnostics go through _show(), which replaces every
registered string by a placeholder.
"""

import base64
import hashlib
import html
import json
import os
import re
import secrets
import shlex
import subprocess
import urllib.parse

import pytest

PY = "/usr/bin/python3"
MASK = "[REDACTED:{}]".format
# every leak report: "leak: PLACE:LINE:COL (form): NAME", PLACE a stream's name or a path, the
# form a name or a nested one: base64(json)
# a file the output guard saw written ends with the program that wrote it: " (written by sh)"
REPORT_RE = re.compile(r"secrets-run: (error|warning): leak: (.+?):(\d+):(\d+) \(([\w-]+(?:\([\w-]+\))?)\): (\w+)(?: \(written by [^)\n]*\))?\n")
STREAMS = ("stdout", "stderr", "stdin", "stdout+stderr")
OWN_LINE_RE = re.compile(r"secrets-run: [^\n]*\n")


# ---------------------------------------------------------------- helpers


def _text(data):
    return data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data


def _scrub(proj, data):
    """data as text with every registered value (longest first) replaced by <registered#i>."""
    text = _text(data)
    for i, v in sorted(enumerate(proj.values), key=lambda iv: -len(iv[1])):
        text = text.replace(v, f"<registered#{i}>")
    return text


def _show(proj, r):
    return (f"status={r.status}\n  stdout={_scrub(proj, r.stdout)[-2000:]!r}\n"
            f"  stderr={_scrub(proj, r.stderr)[-4000:]!r}")


def check(cond, proj, r, what):
    """Like assert, but the failure message shows r only scrubbed of every registered value
    (pytest's own assertion introspection would print the operands)."""
    if not cond:
        pytest.fail(f"{what}\n{_show(proj, r)}", pytrace=False)


def absent(proj, r, *strings):
    """None of strings (str or bytes) occurs in r's stdout or stderr."""
    for i, s in enumerate(strings):
        if isinstance(r.stdout, bytes) and isinstance(s, str):
            s = s.encode("utf-8", "surrogateescape")
        elif isinstance(r.stdout, str) and isinstance(s, bytes):
            s = s.decode("utf-8", "surrogateescape")
        found = s in r.stdout or s in r.stderr
        check(not found, proj, r, f"protected string #{i} (length {len(s)}) appears in the output")


def leaks(r):
    """Stream leak reports on stderr as (level, name, form, stream, line, col)."""
    return [(m[0], m[5], m[4], m[1], int(m[2]), int(m[3])) for m in REPORT_RE.findall(_text(r.stderr))
            if m[1] in STREAMS]


def artifact_leaks(r):
    """File leak reports as (level, path, line, col, form, name)."""
    return [(m[0], m[1], int(m[2]), int(m[3]), m[4], m[5]) for m in REPORT_RE.findall(_text(r.stderr))
            if m[1] not in STREAMS]


def pos(before):
    """(line, col) of the byte after `before` (str or bytes): 1-based, the column in bytes
    since the last newline."""
    if isinstance(before, str):
        before = before.encode("utf-8", "surrogateescape")
    return before.count(b"\n") + 1, len(before) - (before.rfind(b"\n") + 1) + 1


def step_stderr(r):
    """The step's own stderr: r.stderr without secrets-run's lines (they may be written in the
    middle of a step line that has no newline yet)."""
    return OWN_LINE_RE.sub("", _text(r.stderr))


def tok(n=18):
    """A random URL-safe token of about 4n/3 characters (not registered)."""
    return secrets.token_urlsafe(n)


def b64(data, alt=None):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data, altchars=alt).decode()


def env_secrets(proj, values, policy=None):
    """A manifest with one env-backend secret per NAME (read from $SRC_NAME, delivered as a
    file, $NAME_FILE); registers the values; returns the environment to run with."""
    block = "\n".join(f'{n}: {{from: "ci:SRC_{n}", owner: team-a}}' for n in values)
    proj.standard_manifest(block, backends="ci: {type: env}", policy=policy)
    for v in values.values():
        proj.register(v)
    return {f"SRC_{n}": v for n, v in values.items()}


GEN32 = "TOKEN: {generate: {length: 32}}"
KEEP = 'cp "$TOKEN_FILE" "$DATA/value"\n'    # a generate step's first line: lets the test see it


def generated(proj, name="value"):
    """The value a generate step copied to data/NAME, registered."""
    return proj.register((proj.data / name).read_bytes())


def summary_ok(r, level="error"):
    return re.search(rf"secrets-run: {level}: \d+ leaks? of secrets", _text(r.stderr)) is not None


# ---------------------------------------------------------------- 1. raw, per stream


def test_raw_on_stdout_masked_reported_and_fails(proj):
    proj.standard_manifest(GEN32)
    step = proj.script(KEEP + 'printf "token=%s\\n" "$(cat "$TOKEN_FILE")"\necho after\n')
    r = proj.run("run", "--", step)
    value = generated(proj)
    check(len(value) == 32, proj, r, "generated value not copied")
    absent(proj, r, value)
    check(r.stdout == f"token={MASK('TOKEN')}\nafter\n", proj, r, "stdout not masked exactly")
    check(leaks(r) == [("error", "TOKEN", "raw", "stdout", 1, 7)], proj, r,
          "expected one report: stdout:1:7 (raw): TOKEN")
    check(summary_ok(r), proj, r, "no summary line")
    check(r.status == 123, proj, r, "a leak with on_leak fail must exit 123")


def test_raw_on_stderr_masked_reported_and_fails(proj):
    proj.standard_manifest(GEN32)
    step = proj.script(KEEP + 'echo out-clean\nprintf "err: %s\\n" "$(cat "$TOKEN_FILE")" >&2\n')
    r = proj.run("run", "--", step)
    value = generated(proj)
    absent(proj, r, value)
    check(r.stdout == "out-clean\n", proj, r, "stdout changed")
    check(step_stderr(r) == f"err: {MASK('TOKEN')}\n", proj, r, "stderr not masked exactly")
    check(leaks(r) == [("error", "TOKEN", "raw", "stderr", 1, 6)], proj, r,
          "expected one report: stderr:1:6 (raw): TOKEN")
    check(r.status == 123, proj, r, "a leak must exit 123")


def test_interleaved_stdout_and_stderr_masked_and_reported_separately(proj):
    value = tok(24)
    other = tok(24)
    env = env_secrets(proj, {"TOKEN": value, "OTHER": other})
    step = proj.script(f"""
        exec {PY} - <<'EOF'
        import os, sys, time
        v = open(os.environ["TOKEN_FILE"], "rb").read()
        o = open(os.environ["OTHER_FILE"], "rb").read()
        for i in range(3):
            os.write(1, b"out %d: " % i + v + b"\\n")
            time.sleep(0.01)
            os.write(2, b"err %d: " % i + o + b" " + v + b"\\n")
            time.sleep(0.01)
        EOF
        """)
    r = proj.run("run", "--", step, env=env)
    absent(proj, r, value, other)
    check(r.stdout == "".join(f"out {i}: {MASK('TOKEN')}\n" for i in range(3)), proj, r,
          "stdout not masked exactly")
    check(step_stderr(r) == "".join(f"err {i}: {MASK('OTHER')} {MASK('TOKEN')}\n"
                                    for i in range(3)), proj, r, "stderr not masked exactly")
    want_out = [("error", "TOKEN", "raw", "stdout", i + 1, 8) for i in range(3)]
    want_err = sorted([("error", "OTHER", "raw", "stderr", i + 1, 8) for i in range(3)] +
                      [("error", "TOKEN", "raw", "stderr", i + 1, 8 + len(other) + 1)
                       for i in range(3)], key=lambda t: t[4:])
    got = leaks(r)
    check([l for l in got if l[3] == "stdout"] == want_out, proj, r, "stdout reports")
    check(sorted([l for l in got if l[3] == "stderr"], key=lambda t: t[4:]) == want_err, proj, r,
          "stderr reports (one per secret and line)")
    check(re.search(r"9 leaks of secrets \(9 in the output", r.stderr) is not None, proj, r,
          "summary must count 9 leaks in the output")
    check(r.status == 123, proj, r, "exit 123")


# ---------------------------------------------------------------- 2. every form


def _val_plain():
    return tok(24)


def _val_b64url():
    # a value whose standard base64 has + or /, so the URL-safe string is a form of its own
    # (never the case for URL-safe text alone: its bytes are below 0x7b)
    while True:
        v = tok(12) + "?>~" + tok(12)
        if set("+/") & set(b64(v)):
            return v


def _val_hexletters():
    while True:
        v = tok(24)
        if re.search("[a-f]", v.encode().hex()):
            return v


def _val_percent():
    return tok(12) + " /:@+?" + tok(12)


def _val_json():
    return tok(12) + '"q\\b' + tok(12)


def _val_shell():
    return tok(12) + " it's " + tok(12)


def _val_xml():
    return tok(12) + "<&>'\"" + tok(12)


def _val_long():
    return secrets.token_urlsafe(90)[:90]


def _span(raw, inner):
    start = raw.index(inner)
    return raw, start, start + len(inner)


def _pct_lower(s):
    return re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), s)


PYV = f'{PY} -c "import os; v = open(os.environ[\'TOKEN_FILE\']).read(); '
FORMS = {
    # id: (value maker, step body, (value) -> (raw output, mask start, mask end), form, stream)
    "base64": (
        _val_plain, 'printf "auth: "; base64 -w0 "$TOKEN_FILE"; echo',
        lambda v: _span(f"auth: {b64(v)}\n", b64(v)), "base64", "stdout"),
    "base64-align1": (
        _val_plain, 'printf "auth: "; { printf u; cat "$TOKEN_FILE"; } | base64 -w0; echo',
        lambda v: _span(f"auth: {b64('u' + v)}\n", b64("u" + v)[2:]), "base64", "stdout"),
    "base64-align2": (
        _val_plain, 'printf "auth: "; { printf u:; cat "$TOKEN_FILE"; } | base64 -w0; echo',
        lambda v: _span(f"auth: {b64('u:' + v)}\n", b64("u:" + v)[3:]), "base64", "stdout"),
    "base64url": (
        _val_b64url, 'basenc --base64url -w0 "$TOKEN_FILE"; echo',
        lambda v: _span(b64(v, b"-_") + "\n", b64(v, b"-_")), "base64url", "stdout"),
    "base64url-tr-nopad": (
        _val_b64url, 'base64 -w0 "$TOKEN_FILE" | tr "+/" "-_" | tr -d =; echo',
        lambda v: _span(b64(v, b"-_").rstrip("=") + "\n", b64(v, b"-_").rstrip("=")),
        "base64url", "stdout"),
    "base64-wrapped": (
        _val_long, 'base64 "$TOKEN_FILE"',
        lambda v: _span(b64(v)[:76] + "\n" + b64(v)[76:] + "\n", b64(v)[:76] + "\n" + b64(v)[76:]),
        "base64", "stdout"),
    "hex-od": (
        _val_hexletters, 'od -An -v -tx1 "$TOKEN_FILE" | tr -d " \\n"; echo',
        lambda v: _span(v.encode().hex() + "\n", v.encode().hex()), "hex", "stdout"),
    "hex-xxd": (
        _val_hexletters, 'printf "sha=x "; xxd -p -c 256 "$TOKEN_FILE"',
        lambda v: _span(f"sha=x {v.encode().hex()}\n", v.encode().hex()), "hex", "stdout"),
    "HEX": (
        _val_hexletters, 'xxd -p -c 256 "$TOKEN_FILE" | tr a-f A-F',
        lambda v: _span(v.encode().hex().upper() + "\n", v.encode().hex().upper()), "HEX", "stdout"),
    "percent": (
        _val_percent, PYV + 'import urllib.parse as u; print(\'https://x/?t=\' + u.quote(v, safe=\'\'))"',
        lambda v: _span("https://x/?t=" + urllib.parse.quote(v, safe="") + "\n",
                        urllib.parse.quote(v, safe="")), "percent", "stdout"),
    "percent-lower": (
        _val_percent, PYV + 'import urllib.parse as u, re; '
        'print(re.sub(\'%[0-9A-F]{2}\', lambda m: m.group().lower(), u.quote(v, safe=\'\')))"',
        lambda v: _span(_pct_lower(urllib.parse.quote(v, safe="")) + "\n",
                        _pct_lower(urllib.parse.quote(v, safe=""))), "percent-lower", "stdout"),
    "percent-plus": (
        _val_percent, PYV + 'import urllib.parse as u; print(\'t=\' + u.quote_plus(v, safe=\'\'))"',
        lambda v: _span("t=" + urllib.parse.quote_plus(v, safe="") + "\n",
                        urllib.parse.quote_plus(v, safe="")), "percent-plus", "stdout"),
    "json": (
        _val_json, PYV + 'import json; print(json.dumps({\'token\': v}))"',
        lambda v: _span(json.dumps({"token": v}) + "\n", json.dumps(v)[1:-1]), "json", "stdout"),
    "shell-set-x": (
        _val_shell, 'bash -c \'v=$(cat "$TOKEN_FILE"); set -x; : "$v"\'',
        lambda v: _span("+ : '" + v.replace("'", "'\\''") + "'\n", v.replace("'", "'\\''")),
        "shell", "stderr"),
    "shell-printf-q": (
        _val_shell, 'bash -c \'v=$(cat "$TOKEN_FILE"); printf "%q\\n" "$v"\'',
        lambda v: _span(re.sub(r"([ '])", r"\\\1", v) + "\n", re.sub(r"([ '])", r"\\\1", v)),
        "shell", "stdout"),
    "shell-shlex": (
        _val_shell, PYV + 'import shlex; print(\'cmd --token \' + shlex.quote(v))"',
        lambda v: _span("cmd --token " + shlex.quote(v) + "\n", shlex.quote(v)[1:-1]),
        "shell", "stdout"),
    "xml-html-escape": (
        _val_xml, PYV + 'import html; print(\'<t v=\\"\' + html.escape(v) + \'\\"/>\')"',
        lambda v: _span('<t v="' + html.escape(v) + '"/>\n', html.escape(v)), "xml", "stdout"),
    "xml-saxutils": (
        _val_xml, PYV + 'from xml.sax.saxutils import escape; print(\'<t>\' + escape(v) + \'</t>\')"',
        lambda v: _span("<t>" + v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                        + "</t>\n",
                        v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")),
        "xml", "stdout"),
}


@pytest.mark.parametrize("case", list(FORMS))
def test_encoded_form_masked_and_reported(proj, case):
    make, body, expect, form, stream = FORMS[case]
    value = make()
    raw, start, end = expect(value)
    encoded = raw[start:end]
    proj.register(encoded)
    env = env_secrets(proj, {"TOKEN": value})
    step = proj.script(body + "\n")
    r = proj.run("run", "--", step, env=env)
    absent(proj, r, value, encoded)
    want = raw[:start] + MASK("TOKEN") + raw[end:]
    got = r.stdout if stream == "stdout" else step_stderr(r)
    check(got == want, proj, r, f"{stream} not masked exactly as expected for {case}")
    if stream == "stderr":
        check(r.stdout == "", proj, r, "stdout should be empty")
    check(leaks(r) == [("error", "TOKEN", form, stream, *pos(raw[:start]))], proj, r,
          f"expected one report: {stream}:%d:%d ({form}): TOKEN" % pos(raw[:start]))
    check(r.status == 123, proj, r, "exit 123")


def test_wrapped_base64_of_generated_value_with_crlf(proj):
    proj.standard_manifest("TOKEN: {generate: {length: 90}}")
    step = proj.script(KEEP + "base64 \"$TOKEN_FILE\" | sed 's/$/\\r/'\n")
    r = proj.run("run", "--", step)
    value = generated(proj)
    enc = b64(value)
    proj.register(enc[:76])
    proj.register(enc[76:])
    absent(proj, r, value, enc[:76], enc[76:])
    check(r.stdout == MASK("TOKEN") + "\r\n", proj, r, "wrapped CRLF base64 not masked")
    check(leaks(r) == [("error", "TOKEN", "base64", "stdout", 1, 1)], proj, r,
          "expected stdout:1:1 (base64): TOKEN")
    check(r.status == 123, proj, r, "exit 123")


# ---------------------------------------------------------------- 3. split writes


def test_value_split_in_two_writes_at_every_offset(proj):
    proj.standard_manifest(GEN32)
    step = proj.script(f"""
        {KEEP.strip()}
        exec {PY} - <<'EOF'
        import os, time
        v = open(os.environ["TOKEN_FILE"], "rb").read()
        for i in range(1, len(v)):
            os.write(1, b"<" + v[:i])
            time.sleep(0.003)
            os.write(1, v[i:] + b">\\n")
            time.sleep(0.003)
        EOF
        """)
    r = proj.run("run", "--", step)
    value = generated(proj)
    absent(proj, r, value)
    check(r.stdout == f"<{MASK('TOKEN')}>\n" * 31, proj, r, "a value split across writes leaked")
    # the first 10 leaks of a secret, form and stream are reported one by one, the rest counted
    check(leaks(r) == [("error", "TOKEN", "raw", "stdout", i + 1, 2) for i in range(10)],
          proj, r, "expected 10 raw reports at each line's column 2")
    check("leak: stdout (raw): TOKEN: 21 more, from stdout:11:2 to stdout:31:2\n"
          in r.stderr, proj, r, "the other 21 counted, from the 11th line's column 2 to the 31st's")
    check(r.status == 123, proj, r, "exit 123")


def test_value_one_byte_per_write_with_pauses(proj):
    proj.standard_manifest(GEN32)
    step = proj.script(f"""
        {KEEP.strip()}
        printf 'head '
        exec {PY} - <<'EOF'
        import os, time
        v = open(os.environ["TOKEN_FILE"], "rb").read()
        for b in v:
            os.write(1, bytes([b]))
            time.sleep(0.005)
        os.write(1, b" tail\\n")
        EOF
        """)
    r = proj.run("run", "--", step)
    value = generated(proj)
    absent(proj, r, value)
    check(r.stdout == f"head {MASK('TOKEN')} tail\n", proj, r, "byte-per-write value leaked")
    check(leaks(r) == [("error", "TOKEN", "raw", "stdout", 1, 6)], proj, r, "report")
    check(r.status == 123, proj, r, "exit 123")


def test_stream_leak_after_several_lines_reports_line_and_column(proj):
    """A leak after several lines of output, the line written in pieces (each its own read):
    reported as stdout:LINE:COL, the column in bytes since the line's start, and under GitHub
    Actions an annotation with no file (a stream is not one) whose message says where."""
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    env["GITHUB_ACTIONS"] = "true"
    step = proj.script(f"""
        exec {PY} - <<'EOF'
        import os, time
        v = open(os.environ["TOKEN_FILE"], "rb").read()
        for i in range(5):
            os.write(1, b"line %d\\r\\n" % i)
        os.write(1, b"    export X=")
        time.sleep(0.05)
        os.write(1, v[:7])
        time.sleep(0.05)
        os.write(1, v[7:] + b"\\n")
        EOF
        """)
    r = proj.run("run", "--", step, env=env)
    absent(proj, r, value)
    check(leaks(r) == [("error", "TOKEN", "raw", "stdout", 6, 14)], proj, r,
          "expected one report: stdout:6:14 (raw): TOKEN")
    commands = [x for x in _text(r.stdout).split("\n") if x.startswith("::")]
    check(commands == ["::error title=secret leaked::TOKEN (raw) at stdout:6:14"], proj, r,
          f"the stream's annotation: {commands!r}")
    check(r.status == 123, proj, r, "exit 123")


# ---------------------------------------------------------------- 4. multi-line values


def _pem():
    lines = [b64(os.urandom(48)) for _ in range(3)]
    return "-----BEGIN TEST KEY-----\n" + "\n".join(lines) + "\n-----END TEST KEY-----", lines


@pytest.mark.parametrize("how", ["raw", "crlf", "echo-unquoted", "indented"])
def test_multiline_key(proj, how):
    key, lines = _pem()
    for line in lines:
        proj.register(line)
    env = env_secrets(proj, {"KEY": key})
    body, want, forms, where = {
        "raw": ('cat "$KEY_FILE"; echo', f"{MASK('KEY')}\n", {"raw"}, (1, 1)),
        "crlf": ("sed 's/$/\\r/' \"$KEY_FILE\"; echo", f"{MASK('KEY')}\r\n", {"whitespace"}, (1, 1)),
        "echo-unquoted": ('K=$(cat "$KEY_FILE"); echo $K', f"{MASK('KEY')}\n", {"whitespace"}, (1, 1)),
        "indented": ("printf 'key: |\\n'; sed 's/^/  /' \"$KEY_FILE\"; echo",
                     f"key: |\n  {MASK('KEY')}\n", {"whitespace"}, (2, 3)),
    }[how]
    step = proj.script(body + "\n")
    r = proj.run("run", "--", step, env=env)
    absent(proj, r, key, *lines)
    check(r.stdout == want, proj, r, f"multi-line key ({how}) not masked as one span")
    got = leaks(r)
    check(len(got) == 1 and got[0][1:2] == ("KEY",) and got[0][3] == "stdout"
          and got[0][2] in forms, proj, r, f"expected one KEY report, form in {sorted(forms)}")
    # a value spanning lines is placed at its first byte
    check(got[0][4:] == where, proj, r, f"expected the KEY report at stdout:{where[0]}:{where[1]}")
    check(r.status == 123, proj, r, "exit 123")


def test_multiline_key_single_line_printed(proj):
    key, lines = _pem()
    for line in lines:
        proj.register(line)
    env = env_secrets(proj, {"KEY": key})
    step = proj.script('printf "line2=%s\\n" "$(sed -n 3p "$KEY_FILE")"\n')
    r = proj.run("run", "--", step, env=env)
    absent(proj, r, *lines)
    check(r.stdout == f"line2={MASK('KEY')}\n", proj, r, "a single line of the key leaked")
    check(leaks(r) == [("error", "KEY", "line", "stdout", 1, 7)], proj, r, "KEY (line) report")
    check(r.status == 123, proj, r, "exit 123")


# ---------------------------------------------------------------- 5. artifacts


# File timestamps come from the kernel's coarse clock: the artifact tests below (other than the
# one about timing) let the step pause briefly before writing, so each checks only its own subject.
PAUSE = "sleep 0.05\n"


def test_artifact_written_by_step_reported_with_position(proj):
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    step = proj.script(PAUSE + """
        mkdir -p out
        { printf 'header\\n'; cat "$TOKEN_FILE"; printf '\\n'; } > out/result.txt
        head -c 1000 /dev/zero > out/blob.bin; cat "$TOKEN_FILE" >> out/blob.bin
        echo done
        """)
    r = proj.run("run", "--", step, env=env)
    absent(proj, r, value)
    check(r.stdout == "done\n", proj, r, "stdout")
    check(leaks(r) == [], proj, r, "no output leak expected")
    check(sorted(artifact_leaks(r)) == [("error", "out/blob.bin", 1, 1001, "raw", "TOKEN"),
                                        ("error", "out/result.txt", 2, 1, "raw", "TOKEN")],
          proj, r, "expected artifact reports out/blob.bin:1:1001 and out/result.txt:2:1")
    check(re.search(r"2 leaks of secrets \(0 in the output, masked; 2 in artifacts\)",
                    r.stderr) is not None, proj, r, "summary counts")
    check(r.status == 123, proj, r, "an artifact leak must exit 123")


def test_artifact_name_cannot_inject_workflow_commands(proj):
    """A step chooses its files' names, and the runner reads workflow commands from stdout and
    stderr alike: a leaking file named with newlines, "::", ',', ':' and '%' in it gives exactly
    one ::error line, its name escaped as a property, and a report that stays on one line."""
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    env["GITHUB_ACTIONS"] = "true"
    step = proj.script(PAUSE + r"""
        mkdir -p out
        f=$(printf 'out/x\n::add-mask::injected\n::warning file=a,line=1::w%%0A.log')
        cat "$TOKEN_FILE" > "$f"
        echo done
        """)
    r = proj.run("run", "--", step, env=env)
    absent(proj, r, value)
    check(r.status == 123, proj, r, "the artifact leak must exit 123")
    lines = (_text(r.stdout) + _text(r.stderr)).split("\n")
    commands = [line for line in lines if line.lstrip().startswith("::")]
    escaped = "out/x%0A%3A%3Aadd-mask%3A%3Ainjected%0A%3A%3Awarning file=a%2Cline=1%3A%3Aw%250A.log"
    # the message names the place too, escaped as a message: %, CR and LF
    in_message = "out/x%0A::add-mask::injected%0A::warning file=a,line=1::w%250A.log"
    check(commands == [f"::error file={escaped},line=1,col=1,title=secret leaked::TOKEN (raw) at {in_message}:1:1"],
          proj, r, f"exactly one workflow command, the leak's ::error: {commands!r}")
    check("secrets-run: error: leak: out/x\\n::add-mask::injected\\n::warning file=a,line=1::w%0A.log:1:1 (raw): TOKEN"
          f" (written by {step.name[:15]})\n"
          in _text(r.stderr), proj, r, "the report names the file on one line, its newlines escaped")


def test_artifact_encoded_form_is_found(proj):
    value = tok(24)
    proj.register(b64(value))
    env = env_secrets(proj, {"TOKEN": value})
    step = proj.script(PAUSE + """
        printf 'Authorization: Basic ' > req.txt; { printf 'u:'; cat "$TOKEN_FILE"; } | base64 -w0 >> req.txt
        """)
    r = proj.run("run", "--", step, env=env)
    absent(proj, r, value)
    check(artifact_leaks(r) == [("error", "req.txt", 1, len("Authorization: Basic ") + 4, "base64",
                                 "TOKEN")], proj, r, "base64 (alignment 2) in an artifact")
    check(r.status == 123, proj, r, "exit 123")


def test_artifacts_glob_selects_only_matching_files(proj):
    # what a run scans without the output guard (the globs alone); test_guard.py has the rest
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    step = proj.script(PAUSE + """
        mkdir -p out/sub
        { printf abc; cat "$TOKEN_FILE"; } > out/a.log
        cat "$TOKEN_FILE" > out/b.txt
        cat "$TOKEN_FILE" > top.log
        cat "$TOKEN_FILE" > out/sub/c.log
        """)
    r = proj.run("run", "--guard", "off", "--artifacts", "out/*.log", "--", step, env=env)
    absent(proj, r, value)
    check(artifact_leaks(r) == [("error", "out/a.log", 1, 4, "raw", "TOKEN")], proj, r,
          "only out/a.log matches out/*.log")
    check(r.status == 123, proj, r, "exit 123")


def test_artifacts_glob_without_leak_in_matching_files_exits_clean(proj):
    # what a run scans without the output guard (the globs alone); test_guard.py has the rest
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    step = proj.script(PAUSE + """
        mkdir -p out
        echo clean > out/a.log
        cat "$TOKEN_FILE" > out/b.txt
        exit 3
        """)
    r = proj.run("run", "--guard", "off", "--artifacts", "out/*.log", "--", step, env=env)
    check(artifact_leaks(r) == [] and leaks(r) == [], proj, r, "no leak expected")
    check(r.status == 3, proj, r, "the step's own status without a leak")


def test_policy_artifacts_glob_replaces_changed(proj):
    # what a run scans without the output guard (the globs alone); test_guard.py has the rest
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value}, policy='artifacts: ["dist/*"]')
    step = proj.script(PAUSE + """
        mkdir -p dist
        cat "$TOKEN_FILE" > dist/pkg.tar
        cat "$TOKEN_FILE" > notes.txt
        """)
    r = proj.run("run", "--guard", "off", "--", step, env=env)
    check(artifact_leaks(r) == [("error", "dist/pkg.tar", 1, 1, "raw", "TOKEN")], proj, r,
          "policy.artifacts [dist/*]: only dist/pkg.tar is scanned")
    check(r.status == 123, proj, r, "exit 123")


def test_unmodified_file_not_scanned_under_changed(proj):
    # what a run scans without the output guard (the globs alone); test_guard.py has the rest
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    old = proj.dir / "old.txt"
    old.write_text("before " + value + "\n")
    os.utime(old, (old.stat().st_mtime - 3600,) * 2)
    (proj.dir / ".git").mkdir()
    step = proj.script("""
        echo fresh > new.txt
        cat "$TOKEN_FILE" > .git/objects-like
        """)
    r = proj.run("run", "--guard", "off", "--", step, env=env)
    check(artifact_leaks(r) == [] and leaks(r) == [], proj, r,
          "a file not modified during the run (and .git/) must not be scanned")
    check(r.status == 0, proj, r, "clean run exits 0")


def test_preexisting_file_modified_during_run_is_scanned(proj):
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    (proj.dir / "old.txt").write_text("before " + value + "\n")
    step = proj.script("sleep 0.2\necho appended >> old.txt\n")
    r = proj.run("run", "--", step, env=env)
    check(artifact_leaks(r) == [("error", "old.txt", 1, 8, "raw", "TOKEN")], proj, r,
          "a file modified during the run is scanned whole")
    check(r.status == 123, proj, r, "exit 123")


@pytest.mark.parametrize("how", ["append-to-old-file", "new-file"])
def test_file_written_at_the_very_start_of_the_step_is_scanned(proj, how):
    """The step's first action writes the file, with shell builtins only (no fork, so within
    a millisecond of the start): it was modified during the run all the same."""
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    old = proj.dir / "old.txt"
    old.write_text("before " + value + "\n")
    os.utime(old, (old.stat().st_mtime - 3600,) * 2)
    body, want = {
        "append-to-old-file": ("echo appended >> old.txt", ("error", "old.txt", 1, 8, "raw", "TOKEN")),
        "new-file": ('read -r v < "$TOKEN_FILE"; printf "%s\\n" "$v" > new.txt',
                     ("error", "new.txt", 1, 1, "raw", "TOKEN")),
    }[how]
    r = proj.run("run", "--", "sh", "-c", body, env=env)
    absent(proj, r, value)
    check(artifact_leaks(r) == [want], proj, r,
          f"{want[1]} was written during the run and must be scanned")
    check(r.status == 123, proj, r, "exit 123")


# ---------------------------------------------------------------- 6. large clean binary output


def test_ten_megabytes_of_random_binary_pass_through_unchanged(proj):
    proj.standard_manifest(GEN32)
    big = proj.data / "big.bin"
    subprocess.run(["head", "-c", "10M", "/dev/urandom"], stdout=open(big, "wb"), check=True)
    step = proj.script(KEEP + 'cat "$DATA/big.bin"\n')
    # KEEP's copy of the value to data/ is the test's instrumentation, not the subject
    r = proj.run("run", "--guard", "off", "--", step, binary=True, timeout=120)
    generated(proj)
    want = hashlib.sha256(big.read_bytes()).hexdigest()
    got = hashlib.sha256(r.stdout).hexdigest()
    check(got == want, proj, _Brief(r), f"stdout differs ({len(r.stdout)} bytes)")
    check(leaks(r) == [] and r.status == 0, proj, _Brief(r), "clean binary output must exit 0")


class _Brief:
    """A Result stand-in whose stdout is only summarised (10 MB of binary is no diagnostic)."""

    def __init__(self, r):
        self.status, self.stderr = r.status, r.stderr
        self.stdout = f"<{len(r.stdout)} bytes>"


# ---------------------------------------------------------------- 7. partial at end of stream


def test_partial_prefix_at_end_of_stream_is_masked(proj):
    value = tok(24)                     # 32 characters
    proj.register(value[:12])
    env = env_secrets(proj, {"TOKEN": value})
    step = proj.script('printf "k="; head -c 12 "$TOKEN_FILE"\n')
    r = proj.run("run", "--", step, env=env)
    absent(proj, r, value[:12])
    check(r.stdout == f"k={MASK('TOKEN')}", proj, r, "a 12-byte prefix at the end must be masked")
    check(leaks(r) == [("error", "TOKEN", "partial", "stdout", 1, 3)], proj, r,
          "expected stdout:1:3 (partial): TOKEN")
    check(re.search(r"1 leak of secrets \(1 in the output", r.stderr) is not None, proj, r,
          "the partial leak is counted")
    check(r.status == 123, proj, r, "exit 123")


def test_short_prefix_at_end_of_stream_passes_through(proj):
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    step = proj.script('printf "k="; head -c 5 "$TOKEN_FILE"\n')
    r = proj.run("run", "--", step, env=env)
    check(r.stdout == "k=" + value[:5], proj, r, "a 5-byte prefix must be passed through")
    check(leaks(r) == [] and "leak" not in r.stderr, proj, r, "no leak")
    check(r.status == 0, proj, r, "exit 0")


# ---------------------------------------------------------------- 8. redact and scan


def _secret_file(proj, value, name="secret"):
    path = proj.data / name
    path.write_bytes(value.encode() if isinstance(value, str) else value)
    path.chmod(0o600)
    return path


def test_redact_with_secret_file(proj):
    value = proj.register(tok(24))
    proj.register(b64(value))
    f = _secret_file(proj, value)
    data = f"a {value} b\nx {b64(value)}\n"
    r = proj.run("redact", "--secret-file", f"API={f}", input=data)
    absent(proj, r, value, b64(value))
    check(r.stdout == f"a {MASK('API')} b\nx {MASK('API')}\n", proj, r, "redact output")
    check(leaks(r) == [("error", "API", "raw", "stdin", 1, 3),
                       ("error", "API", "base64", "stdin", 2, 3)], proj, r,
          "redact reports (raw at stdin:1:3, base64 at stdin:2:3)")
    check(r.status == 1, proj, r, "redact exits 1 on a leak")


def test_redact_name_defaults_to_file_name_and_warn_exits_zero(proj):
    value = proj.register(tok(24))
    f = _secret_file(proj, value, "DB_PASSWORD")
    r = proj.run("redact", "--secret-file", f, "--on-leak", "warn", input=f"pw={value}")
    absent(proj, r, value)
    check(r.stdout == f"pw={MASK('DB_PASSWORD')}", proj, r, "masked under the file's name")
    check(leaks(r) == [("warning", "DB_PASSWORD", "raw", "stdin", 1, 4)], proj, r, "warning report")
    check(r.status == 0, proj, r, "redact --on-leak warn exits 0")


def test_redact_clean_binary_input_unchanged(proj):
    value = proj.register(tok(24))
    f = _secret_file(proj, value)
    data = os.urandom(200_000) + b"\x1b[1mbold\x1b[0m\xff\xfe\x00tail"
    r = proj.run("redact", "--secret-file", f"K={f}", input=data, binary=True)
    check(r.stdout == data, proj, _Brief(r), "clean input must pass byte for byte")
    check(r.status == 0, proj, _Brief(r), "clean redact exits 0")


def test_redact_with_manifest_secrets(proj):
    value, other = tok(24), tok(24)
    env = env_secrets(proj, {"TOKEN": value, "OTHER": other})
    r = proj.run("redact", env=env, input=f"{other}|{value}\n")
    absent(proj, r, value, other)
    check(r.stdout == f"{MASK('OTHER')}|{MASK('TOKEN')}\n", proj, r, "manifest secrets masked")
    check(sorted(leaks(r), key=lambda t: t[4:]) == [("error", "OTHER", "raw", "stdin", 1, 1),
                                                   ("error", "TOKEN", "raw", "stdin", 1, 34)],
          proj, r, "reports")
    check(r.status == 1, proj, r, "exit 1")


@pytest.mark.parametrize("problem", ["missing", "short", "empty"])
def test_redact_and_scan_bad_secret_file_exit_2(proj, problem):
    target = proj.data / "target.txt"
    target.write_text("nothing here\n")
    if problem == "missing":
        f = proj.data / "no-such-file"
    else:
        f = _secret_file(proj, "" if problem == "empty" else "short")
    r = proj.run("redact", "--secret-file", f"K={f}", input="nothing here\n")
    check(r.status == 2, proj, r, f"redact with a {problem} secret file must exit 2")
    check("secrets-run: error:" in r.stderr, proj, r, "an error message")
    r = proj.run("scan", "--secret-file", f"K={f}", target)
    check(r.status == 2, proj, r, f"scan with a {problem} secret file must exit 2")


def test_scan_with_secret_file(proj):
    value = proj.register(tok(24))
    proj.register(value.encode().hex())
    f = _secret_file(proj, value)
    files = proj.data / "files"
    (files / "deep").mkdir(parents=True)
    (files / "clean.txt").write_text("nothing\n")
    (files / "hit.bin").write_bytes(b"\x00\x01\x02" + value.encode() + b"\xff")
    (files / "deep" / "hex.txt").write_text("h=" + value.encode().hex() + "\n")
    r = proj.run("scan", "--secret-file", f"K={f}", files / "clean.txt")
    check(r.status == 0 and "leak" not in r.stderr, proj, r, "clean file: exit 0")
    r = proj.run("scan", "--secret-file", f"K={f}", files / "clean.txt", files / "hit.bin",
                 files / "deep" / "hex.txt")
    absent(proj, r, value, value.encode().hex())
    check(sorted(artifact_leaks(r)) == sorted([
        ("error", str(files / "hit.bin"), 1, 4, "raw", "K"),
        ("error", str(files / "deep" / "hex.txt"), 1, 3, "hex", "K")]), proj, r, "scan reports")
    check(r.status == 1, proj, r, "scan with a leak exits 1")
    r = proj.run("scan", "--secret-file", f"K={f}", files)
    check(len(artifact_leaks(r)) == 2 and r.status == 1, proj, r,
          "scanning the directory finds both files")
    r = proj.run("scan", "--secret-file", f"K={f}", files / "missing")
    check(r.status == 2, proj, r, "a missing path is an error (2)")


@pytest.mark.parametrize("layout", ["lf", "crlf", "piece-border"])
def test_scan_reports_line_and_column(proj, layout):
    """`scan` places a leak as PATH:LINE:COL: on line 3 at column 17 here, with LF or CRLF
    line ends (the column counts bytes since the '\\n'), and when the value straddles the 1 MiB
    pieces the file is read in; under GitHub Actions the annotation has file, line and col."""
    value = proj.register(tok(24))
    f = _secret_file(proj, value)
    nl = "\r\n" if layout == "crlf" else "\n"
    head = f"first line{nl}second line{nl}"
    prefix = "    password = '"
    if layout == "piece-border":
        # lines before it, so that the value starts 7 bytes before the border of the first piece
        size = 1024 * 1024 - 7 - len(head) - len(prefix)
        filler = ("x" * 63 + "\n") * (size // 64 - 1)
        head = filler + "y" * (size - len(filler) - 1) + "\n" + head
    target = proj.data / "config.txt"
    target.write_bytes((head + prefix + value + "'" + nl + "end" + nl).encode())
    line, col = pos(head + prefix)
    assert (line, col) == ((3, 17) if layout != "piece-border" else (16386, 17))
    assert len(head + prefix) == 1024 * 1024 - 7 or layout != "piece-border"
    r = proj.run("scan", "--secret-file", f"K={f}", target, env={"GITHUB_ACTIONS": "true"})
    absent(proj, r, value)
    check(f"secrets-run: error: leak: {target}:{line}:{col} (raw): K\n" in r.stderr, proj, r,
          f"expected exactly {target.name}:{line}:{col}")
    check(artifact_leaks(r) == [("error", str(target), line, col, "raw", "K")], proj, r, "one report")
    escaped = str(target).replace(":", "%3A").replace(",", "%2C")
    check(f"::error file={escaped},line={line},col={col},title=secret leaked::K (raw) at {target}:{line}:{col}\n"
          in r.stdout, proj, r, "the annotation carries file, line and col")
    check(r.status == 1, proj, r, "exit 1")


def test_scan_with_manifest_secrets(proj):
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    target = proj.data / "log.txt"
    target.write_text("line one\nsecret: " + value + "\n")
    r = proj.run("scan", target, env=env)
    absent(proj, r, value)
    check(artifact_leaks(r) == [("error", str(target), 2, 9, "raw", "TOKEN")], proj, r,
          "scan report with the manifest's secret name")
    check(r.status == 1, proj, r, "exit 1")
    clean = proj.data / "clean.txt"
    clean.write_text("ok\n")
    r = proj.run("scan", clean, env=env)
    check(r.status == 0, proj, r, "clean: exit 0")


# ---------------------------------------------------------------- 9. bytes around a secret


def test_ansi_codes_and_invalid_utf8_around_secret_preserved(proj):
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    before = b"\x1b[1;31mERROR\x1b[0m \xff\xfe\xc3"
    after = b"\xc3(\x00\x1b[0m\x80 end\r\n\x1b[32mok\x1b[0m"
    (proj.data / "before").write_bytes(before)
    (proj.data / "after").write_bytes(after)
    step = proj.script("""
        cat "$DATA/before" "$TOKEN_FILE" "$DATA/after"
        cat "$DATA/before" "$TOKEN_FILE" "$DATA/after" >&2
        """)
    r = proj.run("run", "--", step, env=env, binary=True)
    absent(proj, r, value)
    want = before + MASK("TOKEN").encode() + after
    check(r.stdout == want, proj, r, "stdout bytes around the secret changed")
    check(step_stderr(r).encode("utf-8", "surrogateescape") == want, proj, r,
          "stderr bytes around the secret changed")
    check(leaks(r) == [("error", "TOKEN", "raw", "stdout", 1, len(before) + 1),
                       ("error", "TOKEN", "raw", "stderr", 1, len(before) + 1)] or
          leaks(r) == [("error", "TOKEN", "raw", "stderr", 1, len(before) + 1),
                       ("error", "TOKEN", "raw", "stdout", 1, len(before) + 1)], proj, r, "reports")
    check(r.status == 123, proj, r, "exit 123")


# ---------------------------------------------------------------- 10. --on-leak warn


def test_on_leak_warn_keeps_status_and_warns(proj):
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value})
    step = proj.script(PAUSE + """
        printf 'v=%s\\n' "$(cat "$TOKEN_FILE")"
        base64 -w0 "$TOKEN_FILE" >&2; echo >&2
        cat "$TOKEN_FILE" > artifact.txt
        exit 4
        """)
    r = proj.run("run", "--on-leak", "warn", "--", step, env=env)
    absent(proj, r, value, b64(value))
    check(r.stdout == f"v={MASK('TOKEN')}\n", proj, r, "still masked with warn")
    check(sorted(leaks(r)) == sorted([("warning", "TOKEN", "raw", "stdout", 1, 3),
                                      ("warning", "TOKEN", "base64", "stderr", 1, 1)]), proj, r,
          "warning reports")
    check(artifact_leaks(r) == [("warning", "artifact.txt", 1, 1, "raw", "TOKEN")], proj, r,
          "artifact warning")
    check(summary_ok(r, "warning"), proj, r, "warning summary")
    check("secrets-run: error:" not in r.stderr, proj, r, "no error lines with warn")
    check(r.status == 4, proj, r, "--on-leak warn keeps the step's status")


def test_on_leak_warn_from_policy(proj):
    value = tok(24)
    env = env_secrets(proj, {"TOKEN": value}, policy="on_leak: warn")
    step = proj.script('cat "$TOKEN_FILE"; echo\nexit 0\n')
    r = proj.run("run", "--", step, env=env)
    check(r.stdout == MASK("TOKEN") + "\n", proj, r, "masked")
    check(leaks(r) == [("warning", "TOKEN", "raw", "stdout", 1, 1)], proj, r, "warning report")
    check(r.status == 0, proj, r, "policy on_leak: warn keeps status 0")
    r = proj.run("run", "--on-leak", "fail", "--", step, env=env)
    check(r.status == 123, proj, r, "--on-leak fail overrides the policy")
