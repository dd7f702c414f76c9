"""Vault's warnings (the envelope's "warnings") are shown, one warning line each, through the
run's masker, never dropped: the KV plugin's hint on a KV v2 path outside data/ (an error
that would otherwise read only "not found"), and warnings on answers that succeed."""

from test_vault import assert_nothing_leaked, same_step, vault_backend


def test_the_hint_on_a_wrong_kv2_path_is_shown(proj, vault):
    vault.kv2_put("app", {"k": proj.secret()})
    proj.standard_manifest(secrets_block='MY_SECRET: {from: "v:secret/app#k", owner: t}',
                           backends=vault_backend(vault))
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 125, r
    warn = [l for l in r.stderr.splitlines() if "Vault warns" in l]
    assert len(warn) == 1, r
    assert "warning: backend 'v' (vault), secret MY_SECRET, path secret/app: Vault warns: Invalid path for a versioned K/V secrets engine" in warn[0]


def test_warnings_on_success_one_line_each_and_masked(proj, vault):
    """Two warnings on a read, one on the login: three lines. One quotes a value the run
    holds: it is masked like everything secrets-run prints."""
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    vault.add_warning("secret/data/app", "Endpoint ignored these unrecognized parameters: [x]")
    vault.add_warning("secret/data/app", f"a plugin quoting {value}")
    vault.add_warning("auth/token/lookup-self", "this token is close to its max TTL")
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
                           backends=vault_backend(vault))
    step = same_step(proj, [("A", proj.expect(value))])
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    warn = [l for l in r.stderr.splitlines() if "Vault warns" in l]
    assert len(warn) == 3, r
    assert any("unrecognized parameters" in l for l in warn)
    assert any("a plugin quoting [REDACTED:A]" in l for l in warn), warn
    assert any("token lookup: Vault warns: this token is close" in l for l in warn)
    assert_nothing_leaked(proj, vault)
