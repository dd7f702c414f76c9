"""Retries as Vault's own client makes them (api/client.go over go-retryablehttp):
connection errors, 412, 429 (Retry-After as seconds or as an HTTP date), every 5xx but 501;
one 307 to the active node followed; and all of it, with the login, the identity lookup, the
mount lookups and the fetches, under one deadline per backend: a sealed Vault fails the run
within its timeout."""

import email.utils
import time

import pytest

from test_vault import assert_nothing_leaked, same_step, vault_backend


def one_secret(proj, vault, timeout="10s", address=None, name="A"):
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    proj.standard_manifest(secrets_block=f'{name}: {{from: "v:secret/data/app#k", owner: t}}',
                           backends=vault_backend(vault, timeout=timeout, address=address))
    return same_step(proj, [(name, proj.expect(value))])


@pytest.mark.parametrize("kind", ["412", "504"])
def test_412_and_504_are_retried(proj, vault, kind):
    step = one_secret(proj, vault)
    vault.fault(kind, count=2, prefix="secret/")
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    assert [e["status"] for e in vault.requests(path="secret/data/app")] == [int(kind)] * 2 + [200]


def test_501_is_not_retried(proj, vault):
    step = one_secret(proj, vault, name="MY_SECRET")
    real = vault.server.handle

    def uninitialized(method, path, *a, **kw):
        from vault_server import VaultError
        if path == "/v1/secret/data/app":
            raise VaultError(501, ["Vault is not initialized"])
        return real(method, path, *a, **kw)

    vault.server.handle = uninitialized
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    vault.server.handle = real
    assert r.status == 125, r
    assert len(vault.requests(path="secret/data/app")) == 1
    assert "MY_SECRET" in r.stderr and "HTTP 501" in r.stderr, r


def test_retry_after_as_an_http_date(proj, vault):
    step = one_secret(proj, vault)
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    vault.fault("429", count=1, prefix="secret/", retry_after=when)
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    gets = vault.requests(path="secret/data/app")
    assert [e["status"] for e in gets] == [429, 200]
    assert gets[1]["time"] - gets[0]["time"] >= 0.9, "the date's wait honoured (not the 100 ms backoff)"


def test_standby_redirect_followed_once(proj, vault_factory):
    """A standby answers 307 to the active node (http/handler.go respondStandby): the
    request goes there once, token and all; a second redirect is an answer, not followed."""
    active, standby = vault_factory(tls=False), vault_factory(tls=False)
    standby.server.redirect_to = active.addr
    standby.fault("307")
    token = active.create_token()
    step = one_secret(proj, active, address=standby.addr)
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": token})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    assert [e["status"] for e in standby.requests(path="secret/data/app")] == [307]
    assert [e["status"] for e in active.requests(path="secret/data/app")] == [200]

    active.server.redirect_to = standby.addr
    active.fault("307", prefix="secret/")
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": token})
    assert r.status == 125 and "HTTP 307" in r.stderr, r


def test_redirect_from_https_to_http_refused(proj, vault, vault_factory):
    plain = vault_factory(tls=False)
    vault.server.redirect_to = plain.addr
    vault.fault("307", prefix="secret/")
    step = one_secret(proj, vault, name="MY_SECRET")
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 125, r
    assert "protocol downgrade" in r.stderr and not plain.requests(path="secret/data/app"), r


def test_sealed_vault_fails_within_the_timeout(proj, vault):
    """503 "Vault is sealed" to everything: the identity lookup (an audit log is written),
    the mount lookup and the fetch share the backend's one deadline (they took one each)."""
    one_secret(proj, vault, timeout="4s", name="MY_SECRET")
    vault.server.health["sealed"] = True
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token()}, timeout=60)
    assert r.status == 125, r
    assert r.elapsed < 4 + 1, f"{r.elapsed:.1f} s: not one deadline"
    assert "MY_SECRET" in r.stderr and "Vault is sealed" in r.stderr, r
    assert_nothing_leaked(proj, vault)


def test_sealed_vault_login_fails_within_the_timeout(proj, vault):
    one_secret(proj, vault, timeout="3s", name="MY_SECRET")
    proj.standard_manifest(secrets_block='MY_SECRET: {from: "v:secret/data/app#k", owner: t}',
                           backends=vault_backend(vault, "{method: approle, role_id_env: RID, secret_id_env: SID}",
                                                  timeout="3s"))
    vault.server.health["sealed"] = True
    r = proj.run("run", "--", "true", env={"RID": vault.approle_role_id, "SID": vault.approle_secret_id}, timeout=60)
    assert r.status == 125 and r.elapsed < 3 + 1, r
    assert "login" in r.stderr and "Vault is sealed" in r.stderr, r
