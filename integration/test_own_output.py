"""Nothing leaks from secrets-run's own words (DESIGN §2): everything it writes — errors,
warnings, leak reports, annotations, the step summary, audit fields, JSON — passes one masker
loaded with every value the run fetched and every credential a backend read or obtained. A
store or provider that quotes a value or credential in its error cannot put it in the log;
the message still says what failed. Every test greps every byte secrets-run wrote: its stdout
and stderr, the GitHub step summary and the audit log."""

import json

from test_vault import vault_backend

GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/app", "GITHUB_EVENT_NAME": "push",
          "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch"}


def run_everywhere(proj, *args, env=None):
    """Runs secrets-run under GitHub Actions with a step summary file and returns (result,
    every byte it wrote: stdout, stderr, the summary and the audit log)."""
    summary = proj.data / "step-summary.md"
    r = proj.run(*args, env={**GITHUB, "GITHUB_STEP_SUMMARY": str(summary), **(env or {})})
    log = proj.base / "state" / "secrets-run" / "audit.jsonl"
    written = r.stdout + r.stderr
    for f in (summary, log):
        if f.exists():
            written += f.read_text()
    return r, written


def nowhere(written, *values):
    for i, v in enumerate(values):
        assert v not in written, f"protected string #{i} appears in what secrets-run wrote"


def test_approle_error_quoting_the_secret_id_is_masked(proj, vault):
    """Vault quotes the secret id when a login loses the race for its last use
    (approle/path_login.go): the error says the login failed, the secret id is masked."""
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    role_id, secret_id = vault.add_approle("racy")
    proj.register(secret_id)
    vault.spend_secret_id_concurrently(secret_id)
    proj.standard_manifest(
        secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
        backends=vault_backend(vault, "{method: approle, role_id_env: RID, secret_id_env: SID}"))
    r, written = run_everywhere(proj, "run", "--", "true", env={"RID": role_id, "SID": secret_id})
    assert r.status == 125
    assert "login at auth/approle failed: HTTP 400" in r.stderr
    assert 'invalid secret_id "[REDACTED:approle-secret-id]"' in r.stderr, r.stderr
    nowhere(written, secret_id, value)
    assert not proj.leaked()


def test_provider_quoting_a_fetched_value_is_masked(proj):
    """A provider that fails quoting a value fetched earlier in the run (a wrapper printing
    its environment, a shell's error): masked as that secret, the failure still named."""
    first = proj.secret()
    provider = proj.provider({"first": first})
    failing = proj.script(f"""
        printf 'cannot read: %s\\n' "$(cat '{proj.data}/provider-values/first')" >&2
        exit 3
        """, name="failing.sh")
    proj.standard_manifest(
        secrets_block="""
            FIRST: {from: "p:first", owner: t}
            SECOND: {from: "q:second", owner: t}
            """,
        backends=f"p: {{type: exec, command: [{json.dumps(str(provider))}]}}\n"
                 f"q: {{type: exec, command: [{json.dumps(str(failing))}]}}")
    r, written = run_everywhere(proj, "run", "--", "true")
    assert r.status == 125
    assert "backend 'q' (exec)" in r.stderr and "exited with status 3: cannot read: [REDACTED:FIRST]" in r.stderr
    nowhere(written, first)


def test_artifact_named_after_a_value_is_masked_in_reports_annotations_summary_and_audit(proj):
    """A step that names a file after its secret: the report, the ::error annotation (our
    stdout), the step summary and the audit record name the file with the value masked."""
    value = proj.secret()
    proj.standard_manifest('TOKEN: {from: "ci:SRC", owner: t}', backends="ci: {type: env}")
    step = proj.script('sleep 0.05; mkdir -p out; cat "$TOKEN_FILE" > "out/$(cat "$TOKEN_FILE").txt"\n')
    r, written = run_everywhere(proj, "run", "--", step, env={"SRC": value})
    assert r.status == 123
    assert "leak: out/[REDACTED:TOKEN].txt:1:1 (raw): TOKEN" in r.stderr, r.stderr
    # masked, then escaped as a property
    assert ("::error file=out/[REDACTED%3ATOKEN].txt,line=1,col=1,title=secret leaked::"
            "TOKEN (raw) at out/[REDACTED:TOKEN].txt:1:1") in r.stdout
    nowhere(written, value)
    log = proj.base / "state" / "secrets-run" / "audit.jsonl"
    leak = [json.loads(x) for x in log.read_text().splitlines() if '"event":"leak"' in x]
    assert [x["path"] for x in leak] == ["out/[REDACTED:TOKEN].txt"]


def test_provider_echoing_its_value_to_stderr_before_failing_is_masked(proj):
    """A provider that prints its value, echoes it to stderr and fails: the error still says
    which provider failed and how, and the value is masked under the secret's name."""
    value = proj.secret()
    echo = proj.script(f"""
        v='{value}'
        printf '%s\\n' "$v"
        printf 'got %s but the vault is locked\\n' "$v" >&2
        exit 2
        """, name="echo-provider.sh")
    proj.standard_manifest('TOKEN: {from: "p:token", owner: t}',
                           backends=f"p: {{type: exec, command: [{json.dumps(str(echo))}]}}")
    r, written = run_everywhere(proj, "run", "--", "true")
    assert r.status == 125
    assert "(exec):" in r.stderr and "exited with status 2: got [REDACTED:TOKEN] but the vault is locked" in r.stderr, \
        r.stderr.replace(value, "<value>")
    nowhere(written, value)


def test_value_with_property_characters_is_masked_before_the_annotation_escapes_it(proj):
    """Escaped first, a value's ':' would be '%3A' in the annotation's file property, a form
    no pattern has (and GitHub decodes it for display): each field is masked, then escaped."""
    value = "ab cd:efgh1234,x"
    proj.register(value)
    proj.standard_manifest('TOKEN: {from: "ci:SRC", owner: t}', backends="ci: {type: env}")
    step = proj.script('sleep 0.05; mkdir -p out; v=$(cat "$TOKEN_FILE"); printf %s "$v" > "out/$v.txt"\n')
    r, written = run_everywhere(proj, "run", "--", step, env={"SRC": value})
    assert r.status == 123
    nowhere(written, value, value.replace(":", "%3A").replace(",", "%2C"), "ab cd%3Aefgh1234")


def test_value_shorter_than_8_that_policy_allows_is_masked_in_our_words(proj):
    """policy.min_secret_length below 8 lets a short value run; our words mask it as the
    step's output does."""
    value = "Zq7Wx3"
    proj.standard_manifest('TOKEN: {from: "ci:SRC", owner: t}', backends="ci: {type: env}",
                           policy="min_secret_length: 4")
    step = proj.script('sleep 0.05; mkdir -p out; printf %s "$(cat "$TOKEN_FILE")" > "out/$(cat "$TOKEN_FILE").txt"\n')
    r, written = run_everywhere(proj, "run", "--", step, env={"SRC": value})
    assert r.status == 123
    nowhere(written, value)


def test_provider_stderr_keeps_utf8_so_a_quoted_value_is_masked(proj):
    """A failing provider's stderr is put on one line without rewriting its text (UTF-8 bytes
    stay), so a value it quotes is still recognised."""
    value = "gr\u00fcn-Schl\u00fcssel-4711-geheim"
    proj.register(value)
    failing = proj.script("""
        printf 'cannot read: %s\\n' "$SRC" >&2
        exit 3
        """, name="failing.sh")
    proj.standard_manifest(
        secrets_block="""
            FIRST: {from: "ci:SRC", owner: t}
            SECOND: {from: "q:second", owner: t}
            """,
        backends=f"ci: {{type: env}}\nq: {{type: exec, command: [{json.dumps(str(failing))}]}}")
    r, written = run_everywhere(proj, "run", "--", "true", env={"SRC": value})
    assert r.status == 125
    assert "exited with status 3: cannot read: [REDACTED:FIRST]" in r.stderr, r.stderr.replace(value, "<value>")
    nowhere(written, value, "-Schl")


def test_credential_in_an_audit_array_is_masked(proj, vault):
    """Every string of an audit record passes the masker, inside arrays too: here the token's
    policies (as Vault reports them in backend.identity) quote the token itself."""
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    token = proj.register(vault.create_token())
    vault.token_info(token).policies.append("leaked-" + token)
    proj.standard_manifest('A: {from: "v:secret/data/app#k", owner: t}', backends=vault_backend(vault))
    r, written = run_everywhere(proj, "run", "--", "true", env={"VAULT_TOKEN": token})
    assert r.status == 0, r.stderr
    nowhere(written, token)
    log = proj.base / "state" / "secrets-run" / "audit.jsonl"
    identity = [json.loads(x) for x in log.read_text().splitlines() if '"backend.identity"' in x]
    assert "leaked-[REDACTED:vault-token]" in identity[0]["policies"], identity


def test_policy_mask_that_could_end_a_line_or_string_is_refused(proj):
    proj.standard_manifest('TOKEN: {generate: {length: 32}, owner: t}',
                           policy='mask: "[X]\\n::notice::injected"')
    r = proj.run("check")
    assert r.status == 2 and "SR004" in r.stdout and "'mask' may not contain control characters" in r.stdout, r


def test_a_failed_write_to_stdout_fails_the_command(proj):
    """Our stdout passes the masker; a write that fails there (a full disk) still fails the
    command, as it did before the masker."""
    r = proj.run("store", "init")
    assert r.status == 0, r
    r = proj.run("store", "set", "FOO", input=proj.secret())
    assert r.status == 0, r
    for args in (("store", "list"), ("store", "list", "--format", "json")):
        with open("/dev/full", "wb") as full:
            p = __import__("subprocess").run(proj._argv(args, None), cwd=str(proj.dir), env=proj._env(None),
                                             stdout=full, stderr=__import__("subprocess").PIPE)
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        assert b"No space left on device" in p.stderr, p.stderr
