"""The forms real tools print a value in, end to end (docs/redaction-forms.md, issue 17): Python
repr and pytest, Node's util.inspect, PyYAML, SQL and CSV quote doubling, escapes a shell
resolves, set -x of zsh, busybox ash and dash, base64 of base64 (.dockerconfigjson), base64 of
JSON, percent-encoded base64, JSON in JSON, base64 and xxd -p of a larger document wrapped at
their widths, grep --color and a progress line's \\r inside the value.

Each case runs a real tool over a value generated here: once directly (the text the tool prints,
kept in memory, never shown), then as a step under `secrets-run run` and through `secrets-run
redact`. Where the tool's text locates the value exactly, the output must be that text with
exactly the value's part masked; for encodings of a larger document, the mask must cover every
character that depends on the value alone and at most two more. The leak is reported under the
family's form. Failure messages go through check(), which shows nothing registered.
"""

import base64
import json
import os
import secrets
import string
import subprocess
import urllib.parse

import pytest

from test_redaction import MASK, absent, check, env_secrets, leaks, tok

PY = "/usr/bin/python3"
READ = f'{PY} -c "import os, sys, json, base64, urllib.parse; v = open(os.environ[\'TOKEN_FILE\']).read(); '


def _quoted():
    """A value with both quotes, a backslash and a backtick in the middle."""
    return tok(9) + "'" + tok(3) + '"' + tok(3) + "\\" + tok(3) + "`" + tok(6)


def _quote_runs():
    return tok(9) + "''" + tok(6) + "'" + tok(6)


def _backslashed():
    return tok(9) + "\\d" + tok(6) + "\\q" + tok(6)


def _with_tab():
    return tok(9) + "\t" + tok(6) + "'" + tok(6)


def _plain():
    return tok(24)


def _b64_special():
    """A value whose base64 has '+' or '/' at every alignment, so percent-encoding changes it."""
    while True:
        v = tok(12) + "?>~" + tok(12)
        if all(set("+/") & set(base64.b64encode((("u" * a) + v).encode()).decode()) for a in range(3)):
            return v


def between(start, end):
    """(text) -> the span from after the first `start` to before the last `end`."""
    def span(text):
        a = text.index(start) + len(start)
        return a, text.rindex(end)
    return span


# id: (value maker, step body, text -> (start, end) of the value as printed, forms reported)
EXACT = {
    "python-repr-str": (_quoted, READ + 'print(\'got=\' + repr(v) + \';\')"', between("got='", "';"),
                        {"python"}),
    "python-repr-bytes": (_quoted, READ + 'print(\'got=\' + repr(v.encode()) + \';\')"',
                          between("got=b'", "';"), {"python"}),
    "node-inspect": (lambda: _quoted() + "\x1b[0m",
                     'node -e \'const v = require("fs").readFileSync(process.env.TOKEN_FILE, "utf8"); '
                     'console.log("got=" + require("util").inspect(v) + ";")\'',
                     between("got='", "';"), {"escaped"}),
    "pyyaml-double-quoted": (lambda: _quoted() + "\xe9",
                             READ + 'import yaml; print(yaml.dump({\'token\': v}, default_style=\'\\"\', width=100000), end=\'\')"',
                             between('"token": "', '"'), {"yaml"}),
    "sql-quote-doubled": (_quote_runs, READ + 'print(\'INSERT INTO t VALUES (\\\'\' + v.replace(chr(39), chr(39) * 2) + \'\\\');\')"',
                          between("VALUES ('", "');"), {"quote-doubled"}),
    "csv-quote-doubled": (lambda: tok(9) + '"' + tok(6) + ",x",
                          READ + 'import csv; csv.writer(sys.stdout).writerow([\'ci\', v])"',
                          between('ci,"', '"'), {"quote-doubled"}),
    "shell-word-unescaped": (_backslashed, 'sh -c "echo got=$(cat "$TOKEN_FILE");"', between("got=", "\n"),
                             {"unescaped"}),
    "printf-b-unescaped": (lambda: tok(9) + "\\t" + tok(9), 'printf "got=%b;\\n" "$(cat "$TOKEN_FILE")"',
                           between("got=", ";"), {"unescaped"}),
    "zsh-set-x": (_quote_runs, 'zsh -fc \'v=$(<"$TOKEN_FILE"); PS4="+ "; set -x; : "$v"\' 2>&1',
                  between("+ : '", "'\n"), {"shell"}),
    "zsh-set-x-dollar": (_with_tab, 'zsh -fc \'v=$(<"$TOKEN_FILE"); PS4="+ "; set -x; : "$v"\' 2>&1',
                         between("+ : $'", "'\n"), {"shell"}),
    "busybox-set-x": (_quote_runs, 'busybox sh -c \'v=$(cat "$TOKEN_FILE"); PS4="+ "; set -x; : "$v"\' 2>&1',
                      between("+ : '", "'\n"), {"shell"}),
    "dash-set-x": (_quote_runs, 'dash -c \'v=$(cat "$TOKEN_FILE"); PS4="+ "; set -x; : "$v"\' 2>&1',
                   between("+ : ", "\n"), {"raw"}),
    "json-in-json": (_quoted, READ + 'print(json.dumps({\'payload\': json.dumps({\'t\': v})}))"',
                     between('{\\"t\\": \\"', '\\"}'), {"json(json)"}),
    "grep-color": (_plain, 'grep --color=always -F -e "$(cut -c5-12 "$TOKEN_FILE")" "$TOKEN_FILE"',
                   lambda text: (0, len(text) - 1), {"raw"}),
    "progress-cr": (_plain, READ + 'sys.stdout.write(v[:10]); sys.stdout.flush(); sys.stdout.write(chr(13) + v[10:] + chr(10))"',
                    lambda text: (0, len(text) - 1), {"raw"}),
}


def _direct(proj, body, value):
    """What the tool prints for value, run outside secrets-run (in memory only)."""
    path = proj.data / "direct-token"
    path.write_text(value)
    path.chmod(0o600)
    script = proj.script(body + "\n")
    out = subprocess.run([str(script)], env={**os.environ, "TOKEN_FILE": str(path)},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True).stdout
    path.unlink()
    return out.decode("utf-8", "surrogateescape")


def _both_ways(proj, value, body, text, env):
    """(run result, redact result) for body as a step and for text piped through redact."""
    step = proj.script(body + " 2>&1\n")
    ran = proj.run("run", "--", step, env=env)
    path = proj.data / "token"
    path.write_text(value)
    path.chmod(0o600)
    red = proj.run("redact", "--secret-file", f"TOKEN={path}", input=text)
    return ran, red


@pytest.mark.parametrize("case", list(EXACT))
def test_tool_form_masked_exactly(proj, case):
    make, body, locate, forms = EXACT[case]
    value = make()
    env = env_secrets(proj, {"TOKEN": value})
    text = _direct(proj, body, value)
    start, end = locate(text)
    printed = proj.register(text[start:end])
    if len(printed) < len(value) - 4:
        pytest.fail(f"{case}: the tool did not print the value", pytrace=False)
    want = text[:start] + MASK("TOKEN") + text[end:]
    for r, what in zip(_both_ways(proj, value, body, text, env), ("run", "redact")):
        absent(proj, r, value, printed)
        check(r.stdout == want, proj, r, f"{case}: {what}: not masked exactly")
        got = {l[2] for l in leaks(r)}
        check(got and got <= forms, proj, r, f"{case}: {what}: reported as {sorted(got)}, want {sorted(forms)}")
        check(r.status == (123 if what == "run" else 1), proj, r, f"{case}: {what}: exit status")


def _core(start, end):
    """The base64 characters of bytes [start, end) of a document that depend on them alone."""
    return (start * 8 + 5) // 6, end * 8 // 6


def _wrapped_index(i, width):
    return i + i // width if width else i


# id: (value maker, doc builder (value) -> (document text, byte offset a, byte offset b of the part
#      that depends only on the value), step body printing the encoding of data/doc, width, hex,
#      forms reported)
def _docker(v):
    inner = base64.b64encode(("ci:" + v).encode()).decode()
    doc = json.dumps({"auths": {"registry.example": {"auth": inner}}})
    a = doc.index(inner)
    ia, ib = _core(3, 3 + len(v))
    return doc, a + ia, a + ib


def _token_doc(v):
    doc = json.dumps({"user": "ci", "token": v, "n": 1})
    a = doc.index(json.dumps(v)[1:-1])
    return doc, a, a + len(json.dumps(v)[1:-1])


ENCODED = {
    "dockerconfigjson": (_plain, _docker, 'base64 -w0 "$DATA/doc"; echo', 0, False, {"base64(base64)"}),
    "dockerconfigjson-wrapped": (_plain, _docker, 'base64 "$DATA/doc"', 76, False, {"base64(base64)"}),
    "base64-of-json": (_quoted, _token_doc, 'base64 -w0 "$DATA/doc"; echo', 0, False, {"base64(json)"}),
    "base64-76-of-json": (_plain, _token_doc, 'base64 "$DATA/doc"', 76, False, {"base64"}),
    "base64-64-of-json": (_plain, _token_doc, 'base64 -w 64 "$DATA/doc"', 64, False, {"base64"}),
    "openssl-base64": (_plain, _token_doc, 'openssl base64 -in "$DATA/doc"', 64, False, {"base64"}),
    "xxd-p": (_plain, _token_doc, 'xxd -p "$DATA/doc"', 60, True, {"hex"}),
}


@pytest.mark.parametrize("case", list(ENCODED))
def test_encoding_of_document_masked(proj, case):
    make, build, body, width, hexdump, forms = ENCODED[case]
    value = make()
    env = env_secrets(proj, {"TOKEN": value})
    doc, a, b = build(value)
    (proj.data / "doc").write_text(doc)
    text = _direct(proj, body, value)
    if hexdump:
        first, last = 2 * a, 2 * b
    else:
        first, last = _core(a, b)
    start, end = _wrapped_index(first, width), _wrapped_index(last - 1, width) + 1
    proj.register(text[start:end].replace("\n", ""))
    for r, what in zip(_both_ways(proj, value, body, text, env), ("run", "redact")):
        out = r.stdout
        s = out.find(MASK("TOKEN"))
        check(s >= 0, proj, r, f"{case}: {what}: nothing masked")
        e = len(text) - (len(out) - s - len(MASK("TOKEN")))   # where the text resumes
        check(out[:s] == text[:s] and out[s + len(MASK("TOKEN")):] == text[e:], proj, r,
              f"{case}: {what}: text outside the mask changed")
        check(s <= start and e >= end and (e - s) - (end - start) <= 3, proj, r,
              f"{case}: {what}: mask {s}-{e} does not cover the value's characters {start}-{end} closely")
        got = {l[2] for l in leaks(r)}
        check(got and got <= forms, proj, r, f"{case}: {what}: reported as {sorted(got)}, want {sorted(forms)}")
        check(r.status == (123 if what == "run" else 1), proj, r, f"{case}: {what}: exit status")


def test_percent_encoded_base64(proj):
    """A token base64'd after a user name, then put in a URL by Python's quote() (which keeps
    '/') and by encodeURIComponent (which does not)."""
    value = _b64_special()
    env = env_secrets(proj, {"TOKEN": value})
    for safe in ("/", ""):
        body = READ + f'print(\'https://x.example/cb?auth=\' + urllib.parse.quote(base64.b64encode((\'u:\' + v).encode()).decode(), safe=\'{safe}\'))"'
        text = _direct(proj, body, value)
        proj.register(text[text.index("auth=") + 8:].strip())    # after the user name's "dTo"
        for r, what in zip(_both_ways(proj, value, body, text, env), ("run", "redact")):
            absent(proj, r, value)
            check(MASK("TOKEN") in r.stdout, proj, r, f"safe={safe!r}: {what}: not masked")
            check({l[2] for l in leaks(r)} == {"percent(base64)"}, proj, r, f"safe={safe!r}: {what}: form")


def test_pytest_log_of_ascii_passwords(proj):
    """The issue's measurement: 25 printable-ASCII passwords (as charset: ascii makes them, each
    with a quote of each kind and a backslash) compared in failing pytest assertions; none may be recoverable from the log, in any of the
    forms pytest prints (repr in the assertion, the diff lines, -vv's full repr)."""
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    values = {}
    for i in range(25):
        chars = [secrets.choice(alphabet) for _ in range(21)]
        for c in "'\"\\":   # the characters repr() escapes, each at a random place
            chars.insert(secrets.randbelow(len(chars) + 1), c)
        values[f"PW{i:02}"] = "".join(chars)
    env = env_secrets(proj, values)
    for v in values.values():
        proj.register(repr(v)[1:-1])     # so a failure's message shows neither form
    test = proj.data / "test_pw.py"
    test.write_text("import os, pytest\n"
                    "@pytest.mark.parametrize('name', sorted(k for k in os.environ if k.endswith('_FILE') and k.startswith('PW')))\n"
                    "def test_pw(name):\n"
                    "    assert open(os.environ[name]).read() == 'expected'\n")
    step = proj.script(f"cd \"$DATA\" && {PY} -m pytest -vv -p no:cacheprovider test_pw.py\n")
    r = proj.run("run", "--", step, env=env)
    check("25 failed" in r.stdout, proj, r, "pytest did not run the 25 assertions")
    for v in values.values():
        absent(proj, r, v, repr(v)[1:-1])
    check(r.status == 123, proj, r, "exit 123")
