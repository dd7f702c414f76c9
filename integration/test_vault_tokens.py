"""Tokens handled by what Vault says they are (the login's auth, lookup-self): a batch token
is neither renewed nor revoked, and that is no failure; a token with num_uses is not spent on
our own lookup; a login token is revoked with revoke-self, which Vault's default policy allows
and which takes its leases with it (sys/leases/revoke needs a policy of its own), and the
audit log says what Vault did."""

from test_vault import assert_nothing_leaked, same_step, vault_backend
from test_vault_audit import records

APPROLE = "{method: approle, role_id_env: RID, secret_id_env: SID}"


def approle(vault, proj, **kw):
    rid, sid = vault.add_approle("t", role_id=f"role-{proj.secret()[:8]}", secret_id=proj.secret(), **kw)
    return {"RID": rid, "SID": sid}


def kv_manifest(proj, vault, n=2):
    values = [proj.secret() for _ in range(n)]
    for i, v in enumerate(values):
        vault.kv2_put(f"t{i}", {"k": v})
    block = "\n".join(f'S{i}: {{from: "v:secret/data/t{i}#k", owner: t}}' for i in range(n))
    proj.standard_manifest(secrets_block=block, backends=vault_backend(vault, APPROLE))
    return same_step(proj, [(f"S{i}", proj.expect(v)) for i, v in enumerate(values)])


def test_batch_login_token_is_neither_renewed_nor_revoked_and_that_is_no_failure(proj, vault):
    step = kv_manifest(proj, vault)
    r = proj.run("run", "--", step, env=approle(vault, proj, token_type="batch", ttl=3600))
    assert r.status == 0, r
    assert all(v == "yes" for v in proj.report().values())
    assert not vault.requests(path="auth/token/revoke-self"), "Vault answers 400 to revoking a batch token"
    assert not vault.requests(path="auth/token/renew-self")
    assert "could not" not in r.stderr and "warning" not in r.stderr, r
    assert not records(proj, "lease.revoke_failed")
    ident = records(proj, "backend.identity")[0]
    assert ident["token_type"] == "batch"
    ending = [e for e in records(proj, "lease.expiring") if e["lease"] == "login token"]
    assert ending and "batch token" in ending[0]["reason"]
    assert_nothing_leaked(proj, vault)


def test_login_token_revoked_with_revoke_self_takes_its_leases(proj, vault):
    """Default policy only: sys/leases/revoke would be 403; revoke-self revokes the token and
    its lease, and both are on the log as revoked."""
    proj.standard_manifest(
        secrets_block='DB_PASS: {from: "v:database/creds/app#password", owner: t}',
        backends=vault_backend(vault, APPROLE))
    r = proj.run("run", "--", "true", env=approle(vault, proj, policies=("default",)))
    assert r.status == 0, r
    assert not vault.requests(path="sys/leases/revoke"), "not allowed by the default policy"
    assert [e["status"] for e in vault.requests(path="auth/token/revoke-self")] == [204]
    lease = list(vault.server.leases.values())[0]
    assert lease.revoked
    revoked = records(proj, "lease.revoke")
    assert [e["lease"] for e in revoked] == [lease.id, "login token"]
    assert "revoke-self" in revoked[0]["reason"]
    assert not records(proj, "lease.revoke_failed") and "could not" not in r.stderr, r
    assert_nothing_leaked(proj, vault)


def test_callers_token_with_the_default_policy_records_the_refused_revoke(proj, vault):
    """A caller's token is never revoked by us; its lease is revoked with sys/leases/revoke,
    which the default policy refuses (403): the log says so, it is not hidden."""
    proj.standard_manifest(
        secrets_block='DB_PASS: {from: "v:database/creds/app#password", owner: t}',
        backends=vault_backend(vault))
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token(policies=("default",))})
    assert r.status == 0, r
    assert [e["status"] for e in vault.requests(path="sys/leases/revoke")] == [403]
    failed = records(proj, "lease.revoke_failed")
    assert len(failed) == 1 and "default policy" in failed[0]["reason"], failed
    assert "could not revoke" in r.stderr
    assert not vault.requests(path="auth/token/revoke-self")


def test_num_uses_not_spent_on_our_lookup(proj, vault):
    """token_num_uses 3, two paths: the two reads and revoke-self are all it can do; the
    identity comes from the login, not from a lookup-self that would spend a use."""
    step = kv_manifest(proj, vault)
    r = proj.run("run", "--", step, env=approle(vault, proj, token_num_uses=3))
    assert r.status == 0, r
    assert all(v == "yes" for v in proj.report().values())
    assert not vault.requests(path="auth/token/lookup-self")
    assert [e["status"] for e in vault.requests(path="auth/token/revoke-self")] == [204]
    assert not records(proj, "lease.revoke_failed")
    assert records(proj, "backend.identity")[0]["num_uses"] == 3


def test_num_uses_spent_by_the_reads_is_revoked_by_vault(proj, vault):
    """token_num_uses 2, two paths: the second read is the last use and Vault revokes the
    token; we do not ask again (a 403) and the log says Vault revoked it."""
    step = kv_manifest(proj, vault)
    r = proj.run("run", "--", step, env=approle(vault, proj, token_num_uses=2))
    assert r.status == 0, r
    assert all(v == "yes" for v in proj.report().values())
    assert not vault.requests(path="auth/token/revoke-self")
    assert all(t.revoked for t in vault.tokens_issued())
    token = [e for e in records(proj, "lease.revoke") if e["lease"] == "login token"]
    assert token and "last use" in token[0]["reason"]
    assert "could not" not in r.stderr, r


def test_too_few_uses_warned_before_the_reads(proj, vault):
    kv_manifest(proj, vault, n=3)
    r = proj.run("run", "--", "true", env=approle(vault, proj, token_num_uses=2))
    assert r.status == 125, r
    assert "the token has 2 uses left and this run reads 3 paths" in r.stderr, r


def test_renewals_keep_the_last_use_for_revoke_self(proj, vault):
    """token_num_uses 3, a 3 s lease, a 6 s step: one read, one renewal, and the last use
    left for revoke-self; spending it on a renewal would end the token and the lease with it."""
    proj.standard_manifest(
        secrets_block='DB_PASS: {from: "v:database/creds/app#password", owner: t}',
        backends=vault_backend(vault, APPROLE))
    r = proj.run("run", "--", proj.script("sleep 6\n"), env=approle(vault, proj, token_num_uses=3, ttl=600))
    assert r.status == 0, r
    assert [e["status"] for e in vault.requests(path="auth/token/revoke-self")] == [204]
    assert len(vault.requests(path="sys/leases/renew")) == 1
    assert "could not" not in r.stderr, r
    assert_nothing_leaked(proj, vault)
