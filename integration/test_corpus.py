"""False-positive guard: ordinary CI logs pass through `secrets-run redact` byte for byte.

tests/corpus/ holds real output of the tools a CI step runs (compilers with and without colour,
pytest's assertion diffs, npm, apt with its \\r progress line, set -x traces, git log, base64
and xxd -p of an ELF, make and ninja -v, an X.509 dump and its PEM; tests/corpus/README.md says
how each was made). None of it contains a secret, so with any set of unrelated secret values the
filter must change nothing and report nothing. Every encoded form the matcher builds
(docs/redaction-forms.md) and both match views (terminal, wrap) are exercised this way against
text that looks like encodings, escapes and quoting without being any of them.

The secret sets are generated at test time with the secrets module (no seed):
  A  200 alphanumeric values of 20-40 characters
  B  200 printable-ASCII values of 20-40 characters with quotes, backslashes and spaces
     (like `charset: ascii` generated passwords)
  C  50 token-shaped values: ghp_..., github_pat_..., AKIA..., glpat-..., xoxb-..., JWT-like,
     hex and base64 of random bytes
Each value is a --secret-file; its name (A017, C003_JWT, ...) is all a message ever shows.

A positive control per corpus file plants one generated value in the middle of the file and
checks that it, and only it, is masked: the negative tests cannot pass by not redacting.

Failure messages name the corpus file, the byte offset (and line:col) of the first difference,
the forms and secret names secrets-run reported, and the corpus text around the offset (corpus
text is not secret); never a value.
"""

import os
import re
import secrets
import string
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "tests" / "corpus"
NOT_CORPUS = {"README.md"}
MASK = "[REDACTED:{}]".format
REPORT_RE = re.compile(rb"secrets-run: (?:error|warning): leak: (.+?):(\d+):(\d+) \(([\w()-]+)\): (\w+)")

# Known false positives of the matcher, by (corpus file, secret set): the reason names the form.
# Empty while every corpus file passes; an entry here must describe a real matcher bug.
KNOWN_FALSE_POSITIVES = {}


def corpus_files():
    return sorted(p.name for p in CORPUS.iterdir() if p.is_file() and p.name not in NOT_CORPUS)


FILES = corpus_files()


# ---------------------------------------------------------------- secret sets

ALNUM = string.ascii_letters + string.digits
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7f))   # space .. ~, quotes and backslash included
URLSAFE_B64 = ALNUM + "-_"


def _rand(alphabet, n):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _len():
    return 20 + secrets.randbelow(21)


def _set_a():
    return [(f"A{i:03d}", _rand(ALNUM, _len())) for i in range(200)]


def _set_b():
    out = []
    for i in range(200):
        chars = list(_rand(PRINTABLE, _len()))
        # at least one of each kind that needs quoting somewhere: ' " \ and a space, at random
        # places other than the two ends (a value with a blank at either end also has a
        # trimmed form, which the random part still produces often enough)
        for special in ("'", '"', "\\", " "):
            chars[1 + secrets.randbelow(len(chars) - 2)] = special
        out.append((f"B{i:03d}", "".join(chars)))
    return out


def _b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt_like():
    import json
    header = {"alg": secrets.choice(["HS256", "RS256", "ES256"]), "typ": "JWT",
              "kid": secrets.token_hex(4)}
    payload = {"sub": f"repo:org-{secrets.token_hex(3)}/app:ref:refs/heads/main",
               "aud": "https://ci.example.test", "iat": 1_700_000_000 + secrets.randbelow(10**7),
               "jti": secrets.token_hex(8)}
    return ".".join([_b64url(json.dumps(header, separators=(",", ":")).encode()),
                     _b64url(json.dumps(payload, separators=(",", ":")).encode()),
                     _b64url(secrets.token_bytes(32))])


def _set_c():
    import base64
    kinds = [
        ("GHP", lambda: "ghp_" + _rand(ALNUM, 36)),
        ("GHPAT", lambda: "github_pat_" + _rand(ALNUM, 22) + "_" + _rand(ALNUM, 59)),
        ("AKIA", lambda: "AKIA" + _rand(string.ascii_uppercase + string.digits, 16)),
        ("AWSSECRET", lambda: _rand(ALNUM + "+/", 40)),
        ("GLPAT", lambda: "glpat-" + _rand(URLSAFE_B64, 20)),
        ("SLACK", lambda: "xoxb-" + "-".join(str(secrets.randbelow(10**12)).zfill(12)
                                             for _ in range(2)) + "-" + _rand(ALNUM, 24)),
        ("JWT", _jwt_like),
        ("HEX", lambda: secrets.token_hex(16 + secrets.randbelow(17))),
        ("B64", lambda: base64.b64encode(secrets.token_bytes(18 + secrets.randbelow(31))).decode()),
        ("B64URL", lambda: secrets.token_urlsafe(24 + secrets.randbelow(17))),
    ]
    return [(f"C{i:03d}_{kinds[i % len(kinds)][0]}", kinds[i % len(kinds)][1]())
            for i in range(50)]


SET_MAKERS = {"A": _set_a, "B": _set_b, "C": _set_c}


@pytest.fixture(scope="module")
def secret_sets(tmp_path_factory):
    """{set: [(name, value, path)]}: the values generated once for this module, each in a 0600
    file (no trailing newline) under a private directory."""
    base = tmp_path_factory.mktemp("corpus-secrets")
    base.chmod(0o700)
    sets = {}
    for key, make in SET_MAKERS.items():
        entries = []
        for name, value in make():
            path = base / name
            path.write_bytes(value.encode())
            path.chmod(0o600)
            entries.append((name, value, path))
        sets[key] = entries
    return sets


def _args(entries):
    args = []
    for name, _value, path in entries:
        args += ["--secret-file", f"{name}={path}"]
    return args


# ---------------------------------------------------------------- diagnostics (never a value)


def _first_difference(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n if len(a) != len(b) else None


def _line_col(data, offset):
    before = data[:offset]
    return before.count(b"\n") + 1, offset - (before.rfind(b"\n") + 1) + 1


def _reports(stderr):
    """The leak reports as 'PLACE:LINE:COL (form): NAME' (names and forms, no values)."""
    return [f"{m[0].decode()}:{m[1].decode()}:{m[2].decode()} ({m[3].decode()}): {m[4].decode()}"
            for m in REPORT_RE.findall(stderr)]


def _scrubbed(proj, data):
    text = data.decode("utf-8", "surrogateescape")
    for i, v in sorted(enumerate(proj.values), key=lambda iv: -len(iv[1])):
        text = text.replace(v, f"<registered#{i}>")
    return text


def _explain(proj, fname, original, r, what):
    off = _first_difference(original, r.stdout)
    lines = [f"{fname}: {what}", f"  exit status {r.status}"]
    if off is not None:
        line, col = _line_col(original, off)
        ctx = original[max(0, off - 60):off + 60]
        lines.append(f"  first difference at byte {off} (line {line}, col {col}) of "
                     f"{len(original)}; output is {len(r.stdout)} bytes")
        lines.append(f"  corpus text around it: {_scrubbed(proj, ctx)!r}")
    reports = _reports(r.stderr)
    lines.append(f"  {len(reports)} leak report(s): {reports[:10]}")
    other = [l for l in _scrubbed(proj, r.stderr).splitlines() if " leak: " not in l]
    if other:
        lines.append(f"  other stderr: {other[:8]}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the corpus itself


def test_corpus_present_and_within_size():
    assert len(FILES) >= 15, f"tests/corpus/ has only {FILES}"
    sizes = {f: (CORPUS / f).stat().st_size for f in FILES}
    empty = [f for f, s in sizes.items() if s == 0]
    big = [f for f, s in sizes.items() if s > 400 * 1024]
    assert not empty, f"empty corpus files: {empty}"
    assert not big, f"corpus files over 400 KiB: {big}"
    total = sum(sizes.values())
    assert total <= 1536 * 1024, f"corpus is {total} bytes, over 1.5 MiB"


def test_readme_describes_every_corpus_file():
    readme = (CORPUS / "README.md").read_text()
    missing = [f for f in FILES if f"`{f}`" not in readme]
    assert not missing, f"tests/corpus/README.md does not describe {missing}"


# ---------------------------------------------------------------- clean corpus, byte for byte


def _clean_params():
    out = []
    for f in FILES:
        for key in SET_MAKERS:
            reason = KNOWN_FALSE_POSITIVES.get((f, key))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            out.append(pytest.param(f, key, id=f"{f}-{key}", marks=marks))
    return out


@pytest.mark.parametrize("fname,key", _clean_params())
def test_corpus_file_passes_unchanged(proj, secret_sets, fname, key):
    entries = secret_sets[key]
    for _name, value, _path in entries:
        proj.register(value)
    original = (CORPUS / fname).read_bytes()
    r = proj.run("redact", *_args(entries), input=original, binary=True, timeout=120)
    if r.stdout != original:
        pytest.fail(_explain(proj, fname, original, r,
                             f"changed by redaction with secret set {key} (false positive)"),
                    pytrace=False)
    if r.status != 0 or b"leak" in r.stderr:
        pytest.fail(_explain(proj, fname, original, r,
                             f"set {key}: output identical but the exit status or stderr reports "
                             "a find (a clean redact exits 0 and reports no leak)"), pytrace=False)


# ---------------------------------------------------------------- positive control per file


def _middle_line_start(data):
    """Offset of the start of the line nearest the middle of data (0 if it has no newline)."""
    mid = len(data) // 2
    before = data.rfind(b"\n", 0, mid)
    after = data.find(b"\n", mid)
    cands = [p + 1 for p in (before, after) if p != -1 and p + 1 < len(data)]
    return min(cands, key=lambda p: abs(p - mid)) if cands else 0


@pytest.mark.parametrize("fname", FILES)
def test_planted_value_is_masked(proj, secret_sets, fname):
    key = "ABC"[FILES.index(fname) % 3]
    entries = secret_sets[key]
    for _name, value, _path in entries:
        proj.register(value)
    name, value, _path = entries[secrets.randbelow(len(entries))]
    original = (CORPUS / fname).read_bytes()
    at = _middle_line_start(original)
    planted = original[:at] + value.encode() + b"\n" + original[at:]
    want = original[:at] + MASK(name).encode() + b"\n" + original[at:]
    r = proj.run("redact", *_args(entries), input=planted, binary=True, timeout=120)
    if value.encode() in r.stdout:
        pytest.fail(f"{fname}: the value planted at byte {at} (secret {name}, set {key}) "
                    f"passed through unmasked; exit status {r.status}", pytrace=False)
    if r.stdout != want:
        pytest.fail(_explain(proj, fname, want, r,
                             f"planted {name} (set {key}) at byte {at}: output is not the "
                             "corpus with exactly that value masked"), pytrace=False)
    reports = _reports(r.stderr)
    line, col = _line_col(planted, at)
    expected = f"stdin:{line}:{col} (raw): {name}"
    if r.status != 1 or reports != [expected]:
        pytest.fail(f"{fname}: planted {name} at byte {at}: want exit 1 and the one report "
                    f"{expected!r}, got exit {r.status} and {reports[:10]}", pytrace=False)
