"""What the Vault backend puts in the audit log: who it acted as (backend.identity, from
auth/token/lookup-self, never the token or its accessor) and its lease events while the step
runs and at exit (lease.renew, lease.renew_failed, lease.expiring, lease.revoke,
lease.revoke_failed), in the hash chain, before run.exit. No value in any record."""

import json
import time

from test_vault import assert_nothing_leaked, vault_backend


def log_path(proj):
    return proj.base / "state" / "secrets-run" / "audit.jsonl"


def records(proj, event=None):
    recs = [json.loads(line) for line in log_path(proj).read_text().splitlines()]
    return [r for r in recs if event is None or r["event"] == event]


def assert_log_clean(proj, vault):
    """Intact chain; no value, token or accessor anywhere in the log."""
    assert proj.run("audit", "verify", str(log_path(proj))).status == 0
    data = log_path(proj).read_text()
    for value in vault.secret_values():
        assert value not in data, "a secret or token is in the audit log"
    for tok in vault.tokens_issued():
        assert tok.accessor not in data, "a token accessor is in the audit log"


def db_manifest(proj, vault, auth="{method: token}", role="app", policy=None, timeout="5s"):
    proj.standard_manifest(
        secrets_block=f"""
            DB_USER: {{from: "v:database/creds/{role}#username", owner: t}}
            DB_PASS: {{from: "v:database/creds/{role}#password", owner: t}}
            """,
        backends=vault_backend(vault, auth, timeout=timeout), policy=policy)


def test_renewals_and_revocations_recorded_in_order(proj, vault):
    """3 s lease and 3 s login token, 10 s step: renewals of both, then revocations of both
    just before run.exit; the identity of the login is recorded before the first fetch."""
    vault.add_approle("short", ttl=3, max_ttl=60, role_id="short-role", secret_id=proj.secret(),
                      policies=("default", "db-read"))
    sid = next(iter(vault.server.approle_roles["approle"]["short-role"]["secret_ids"]))
    db_manifest(proj, vault, "{method: approle, role_id_env: RID, secret_id_env: SID}")
    r = proj.run("run", "--", proj.script("sleep 10\n"), env={"RID": "short-role", "SID": sid})
    assert r.status == 0, r
    lease_id = list(vault.server.leases)[0]

    renew = records(proj, "lease.renew")
    assert len([e for e in renew if e["lease"] == lease_id]) >= 3
    assert len([e for e in renew if e["lease"] == "login token"]) >= 3
    assert all(e["backend"] == "v" and e["ttl"] > 0 for e in renew)

    events = [e["event"] for e in records(proj)]
    assert events[-3:] == ["lease.revoke", "lease.revoke", "run.exit"], events
    revoked = records(proj, "lease.revoke")
    assert [e["lease"] for e in revoked] == [lease_id, "login token"]

    (ident,) = records(proj, "backend.identity")
    assert events.index("backend.identity") < events.index("secret.fetch")
    assert ident["backend"] == "v" and ident["type"] == "vault" and ident["auth"] == "approle"
    assert ident["login"] is True and ident["display_name"] == "approle"
    assert ident["policies"] == ["default", "db-read"] and ident["entity_id"]
    assert len(vault.requests(path="auth/token/lookup-self")) == 1
    assert_log_clean(proj, vault)
    assert_nothing_leaked(proj, vault)


def test_caller_token_identity_and_no_lookup_without_an_audit(proj, vault):
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    token = proj.register(vault.create_token(policies=("default", "app"), display_name="token-ci"))
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
                           backends=vault_backend(vault))
    assert proj.run("run", "--", "true", env={"VAULT_TOKEN": token}).status == 0
    (ident,) = records(proj, "backend.identity")
    assert ident["auth"] == "token" and ident["login"] is False
    assert ident["display_name"] == "token-ci" and ident["policies"] == ["default", "app"]
    assert not records(proj, "lease.revoke"), "a caller's token is not revoked"
    assert_log_clean(proj, vault)

    vault.clear_log()
    assert proj.run("run", "--dry-run", env={"VAULT_TOKEN": token}).status == 0
    assert not vault.requests(path="auth/token/lookup-self"), "no audit, no lookup"
    assert_nothing_leaked(proj, vault)


def test_max_ttl_reached_gives_lease_expiring(proj, vault):
    """A 2 s lease renewable up to 4 s after issue, a 6 s step: a renewal is granted less
    than asked, so the lease will end while the step runs."""
    vault.add_db_role("capped", ttl=2, max_ttl=4)
    db_manifest(proj, vault, role="capped")
    r = proj.run("run", "--", proj.script("sleep 6\n"), env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    lease_id = list(vault.server.leases)[0]
    (expiring,) = records(proj, "lease.expiring")
    assert expiring["lease"] == lease_id and expiring["ttl"] < 2 and expiring["reason"]
    events = [e["event"] for e in records(proj)]
    assert events.index("lease.renew") < events.index("lease.expiring") < events.index("lease.revoke")
    assert_log_clean(proj, vault)
    assert_nothing_leaked(proj, vault)


def test_lease_shorter_than_the_timeout_noted_at_start(proj, vault):
    vault.add_db_role("fixed", ttl=5, max_ttl=5, renewable=False)
    db_manifest(proj, vault, role="fixed")
    r = proj.run("run", "--timeout", "1m", "--", "true", env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    (expiring,) = records(proj, "lease.expiring")
    assert expiring["ttl"] == 5 and expiring["lease"] == list(vault.server.leases)[0]
    events = [e["event"] for e in records(proj)]
    assert events.index("lease.expiring") < events.index("secret.deliver")
    # shorter --timeout: nothing to say
    proj.run("run", "--timeout", "3s", "--", "true", env={"VAULT_TOKEN": vault.create_token()})
    assert len(records(proj, "lease.expiring")) == 1
    assert_nothing_leaked(proj, vault)


def test_failed_renewal_and_failed_revocation_recorded(proj, vault):
    db_manifest(proj, vault, timeout="2s")
    vault.fault("close", prefix="/v1/sys/leases/renew")
    vault.fault("503", prefix="/v1/sys/leases/revoke")
    started = time.monotonic()
    r = proj.run("run", "--", proj.script("sleep 3\n"), env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert time.monotonic() - started < 3 + 2 + 5
    failed = records(proj, "lease.renew_failed")
    assert failed and all(e["reason"] and e["lease"] == list(vault.server.leases)[0] for e in failed)
    assert not records(proj, "lease.renew")
    (rf,) = records(proj, "lease.revoke_failed")
    assert "503" in rf["reason"]
    events = [e["event"] for e in records(proj)]
    assert events[-2:] == ["lease.revoke_failed", "run.exit"]
    assert_log_clean(proj, vault)
    assert_nothing_leaked(proj, vault)


def test_caller_token_shorter_than_the_timeout_noted_at_start(proj, vault):
    """secrets-run never renews a caller's token: one that ends before --timeout takes the
    step's leases with it, which the log says at the start."""
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
                           backends=vault_backend(vault))
    short = proj.register(vault.create_token(ttl=20))
    assert proj.run("run", "--timeout", "1m", "--", "true", env={"VAULT_TOKEN": short}).status == 0
    (expiring,) = records(proj, "lease.expiring")
    assert expiring["lease"] == "token" and 0 < expiring["ttl"] <= 20 and expiring["reason"]
    long = proj.register(vault.create_token(ttl=3600))
    assert proj.run("run", "--timeout", "1m", "--", "true", env={"VAULT_TOKEN": long}).status == 0
    assert proj.run("run", "--", "true", env={"VAULT_TOKEN": short}).status == 0
    assert len(records(proj, "lease.expiring")) == 1, "a long token, or no --timeout: nothing to say"
    assert_log_clean(proj, vault)
    assert_nothing_leaked(proj, vault)
