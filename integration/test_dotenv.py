"""The dotenv backend ({type: dotenv, path: .env}): KEY=value lines read with docker compose's
rules (comments, quotes, escapes, interpolation), the file checked like the store's key file,
hidden from the step; and `store import --dotenv FILE`, which moves a .env into the encrypted
store."""

import os

import pytest

# (the .env text, the value each key must have) - compose's own examples among them
CASES = [
    ("PLAIN", "PLAIN=plain-value-1234", "plain-value-1234"),
    ("EXPORTED", "export EXPORTED=exported-value-1234", "exported-value-1234"),
    ("SPACED", "SPACED = spaced value 1234   # a comment", "spaced value 1234"),
    ("HASHED", "HASHED=value#not-a-comment", "value#not-a-comment"),
    ("DQ", 'DQ="double # not a comment"  # comment', "double # not a comment"),
    ("ESCAPES", 'ESCAPES="tab\\there\\nnewline \\"quoted\\" back\\\\slash"', 'tab\there\nnewline "quoted" back\\slash'),
    ("SQ", "SQ='single $PLAIN \\' quote \\t'", "single $PLAIN ' quote \\t"),
    ("UQ_BACKSLASH", "UQ_BACKSLASH=some\\tvalue-1234", "some\\tvalue-1234"),
    ("INTERP", 'INTERP="${PLAIN}-and-$EXPORTED"', "plain-value-1234-and-exported-value-1234"),
    ("DEFAULT", "DEFAULT=${NOT_SET_ANYWHERE:-fallback-value-1}", "fallback-value-1"),
    ("ALT", "ALT=x${PLAIN:+set-so-this}x-1234", "xset-so-thisx-1234"),
    ("DOLLAR", 'DOLLAR="cost \\$5 and $ alone 1234"', "cost $5 and $ alone 1234"),
    ("MULTI", 'MULTI="line one\nline two 1234"', "line one\nline two 1234"),
    ("JSONISH", 'JSONISH="{\\"hello\\": \\"json\\"}-1234"', '{"hello": "json"}-1234'),
]


def write_env(proj, text, mode=0o600, name=".env"):
    path = proj.dir / name
    path.write_text(text)
    path.chmod(mode)
    return path


def dotenv_manifest(proj, names, path=None):
    secrets = "\n".join(f"{n}: {{from: 'dot:{n}'}}" for n in names)
    backend = "dot: {type: dotenv" + (f", path: {path}" if path else "") + "}"
    proj.standard_manifest(secrets, backends=backend, policy="require_owner: false")


def test_values_follow_compose_rules(proj):
    text = "# a comment line\n\n" + "\n".join(line for _, line, _ in CASES) + "\n"
    for _, _, value in CASES:
        proj.register(value)
    write_env(proj, text)
    dotenv_manifest(proj, [n for n, _, _ in CASES])
    checks = "".join(f'same "${n}_FILE" "{proj.expect(v, n)}" > /dev/null && report {n} "$(same "${n}_FILE" "{proj.data / n}")"\n'
                     for n, _, v in CASES)
    step = proj.script(checks + 'report env_file_bytes "$(wc -c < .env)"\n')
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    got = proj.report()
    assert {n: got.get(n) for n, _, _ in CASES} == {n: "yes" for n, _, _ in CASES}
    # the step cannot read the .env itself (it would get every value, granted or not)
    assert got["env_file_bytes"] == "0"
    assert not proj.leaked()


def test_a_later_line_wins_and_interpolation_sees_the_environment(proj):
    value = proj.secret()
    write_env(proj, "TOKEN=first-value-1234\nTOKEN=${FROM_ENV}\n")
    dotenv_manifest(proj, ["TOKEN"])
    step = proj.script(f'report token "$(same "$TOKEN_FILE" "{proj.expect(value)}")"\n')
    r = proj.run("run", "--", step, env={"FROM_ENV": value})
    assert r.status == 0, r
    assert proj.report()["token"] == "yes"
    assert not proj.leaked()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_file_others_can_read_is_refused(proj, mode):
    write_env(proj, f"TOKEN={proj.secret()}\n", mode=mode)
    dotenv_manifest(proj, ["TOKEN"])
    r = proj.run("run", "--", "true")
    assert r.status == 125, r
    assert "readable by others" in r.stderr and "chmod 600" in r.stderr, r
    assert not proj.leaked()


def test_a_symlink_is_refused(proj):
    real = write_env(proj, f"TOKEN={proj.secret()}\n", name="real.env")
    os.symlink(real, proj.dir / ".env")
    dotenv_manifest(proj, ["TOKEN"])
    r = proj.run("run", "--", "true")
    assert r.status == 125 and ".env" in r.stderr, r
    assert not proj.leaked()


def test_errors_name_the_line_or_key_never_a_value(proj):
    value = proj.secret()
    write_env(proj, f"GOOD={value}\nthis line is not an assignment\n")
    dotenv_manifest(proj, ["GOOD"])
    r = proj.run("run", "--", "true")
    assert r.status == 125 and ".env:2:" in r.stderr, r
    write_env(proj, f"GOOD={value}\n")
    dotenv_manifest(proj, ["MISSING"])
    r = proj.run("run", "--", "true")
    assert r.status == 125 and "MISSING" in r.stderr, r
    write_env(proj, 'GOOD="unterminated\n')
    dotenv_manifest(proj, ["GOOD"])
    r = proj.run("run", "--", "true")
    assert r.status == 125 and "unterminated" in r.stderr, r
    write_env(proj, "GOOD=${REQUIRED:?set it}\n")
    r = proj.run("run", "--", "true")
    assert r.status == 125 and "REQUIRED is not set" in r.stderr, r
    assert not proj.leaked()


def test_path_relative_to_the_manifest(proj):
    value = proj.secret()
    (proj.dir / "config").mkdir()
    write_env(proj, f"TOKEN={value}\n", name="config/dev.env")
    dotenv_manifest(proj, ["TOKEN"], path="config/dev.env")
    sub = proj.dir / "sub"
    sub.mkdir()
    step = proj.script(f'report token "$(same "$TOKEN_FILE" "{proj.expect(value)}")"\n')
    r = proj.run("run", "--", step, cwd=sub)
    assert r.status == 0, r
    assert proj.report()["token"] == "yes"


def init_store(proj):
    proj.manifest("version: 1\nbackends: {local: {type: file}}\n")
    r = proj.run("store", "init")
    assert r.status == 0, r


def value():
    """A throwaway value `store get` is meant to print (so not one the leak guard watches)."""
    return "v-" + os.urandom(12).hex()


def test_store_import_dotenv(proj):
    a, b = value(), value()
    env = write_env(proj, f"# local development\nAPI_TOKEN={a}\nexport DB_PASSWORD='{b}'\n")
    init_store(proj)
    r = proj.run("store", "import", "--dotenv", env)
    assert r.status == 0, r
    assert "imported 2 secrets" in r.stderr and "remove it" in r.stderr, r
    for name, want in (("API_TOKEN", a), ("DB_PASSWORD", b)):
        got = proj.run("store", "get", name)
        assert got.status == 0 and got.stdout.rstrip("\n") == want, name
    # again: the names are there, nothing is imported without --replace
    again = proj.run("store", "import", "--dotenv", env)
    assert again.status == 1 and "already in" in again.stderr, again
    c = value()
    write_env(proj, f"API_TOKEN={c}\n")
    replaced = proj.run("store", "import", "--dotenv", env, "--replace")
    assert replaced.status == 0, replaced
    assert proj.run("store", "get", "API_TOKEN").stdout.rstrip("\n") == c
    history = proj.run("store", "history", "API_TOKEN", "--format", "json")
    assert history.status == 0 and history.stdout.count('"version"') == 2, history
    # what secrets-run itself said (not store get) holds no value
    assert not any(v in r.stderr + again.stderr + replaced.stderr for v in (a, b, c))


def test_store_import_dotenv_refuses_bad_names_and_loose_files(proj):
    init_store(proj)
    env = write_env(proj, f"GOOD={proj.secret()}\nnot.a.name={proj.secret()}\n")
    r = proj.run("store", "import", "--dotenv", env)
    assert r.status == 1 and "'not.a.name' is not a valid secret name" in r.stderr, r
    assert proj.run("store", "get", "GOOD").status != 0, "a partial import"
    loose = write_env(proj, f"GOOD={proj.secret()}\n", mode=0o644)
    r = proj.run("store", "import", "--dotenv", loose)
    assert r.status == 1 and "readable by others" in r.stderr, r
    assert not proj.leaked()
