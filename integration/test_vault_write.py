"""plan/apply/rotate against the Vault test double: a generated secret stored with
`store: true` at a KV v2 path is created once, kept with the path's other fields, aged by
rotation.max_age / fail_after, and rotated with check-and-set (two concurrent applies make
one version). Assertions are on exit statuses and on what the double holds, not on text."""

import json

import pytest

from vault_server import VaultError

PATH = "ci/db"           # KV v2 at secret/: API path secret/data/ci/db


def write_manifest(proj, vault, policy=None):
    ca = f"ca_cert: {vault.ca_path}, " if vault.ca_path else ""
    proj.standard_manifest(
        secrets_block="""
            DB_PASSWORD:
              from: "vault:secret/data/ci/db#password"
              generate: {length: 32, store: true}
              rotation: {max_age: 30d, fail_after: 45d}
              owner: t
            """,
        backends=f"vault: {{type: vault, address: \"{vault.addr}\", {ca}timeout: 5s, auth: {{method: token}}}}",
        policy=policy)


def versions(vault):
    """{version: data} of secret/data/ci/db (data None if destroyed); {} if never written."""
    entry = vault.server.kv2["secret"]["paths"].get(PATH)
    return dict(entry["versions"]) if entry else {}


def current(vault):
    v = versions(vault)
    return v[max(v)]["data"] if v else None


def writes(vault):
    return [e for e in vault.requests(path=f"secret/data/{PATH}") if e["method"] in ("POST", "PUT")]


@pytest.fixture
def token(proj, vault):
    return proj.register(vault.create_token())


def register_stored(proj, vault):
    """Whatever apply stored is a secret too: the leak check must look for it."""
    for v in versions(vault).values():
        for value in (v["data"] or {}).values():
            proj.register(value)


def test_apply_creates_missing_then_changes_nothing(proj, vault, token):
    write_manifest(proj, vault)
    env = {"VAULT_TOKEN": token}
    assert proj.run("plan", env=env).status == 2, "missing: drift"
    r = proj.run("apply", env=env)
    assert r.status == 0, r
    register_stored(proj, vault)
    assert list(versions(vault)) == [1]
    assert len(current(vault)["password"]) == 32
    assert [w["body"]["options"] for w in writes(vault)] == [{"cas": 0}], "created with cas 0"

    assert proj.run("plan", env=env).status == 0, "in sync after apply"
    assert proj.run("apply", env=env).status == 0
    assert list(versions(vault)) == [1], "a second apply changes nothing"
    assert len(writes(vault)) == 1
    assert not proj.leaked()


def test_other_fields_at_the_path_are_preserved(proj, vault, token):
    keep = proj.secret()
    vault.kv2_put(PATH, {"username": "app", "note": keep})
    write_manifest(proj, vault)
    r = proj.run("apply", env={"VAULT_TOKEN": token})
    assert r.status == 0, r
    register_stored(proj, vault)
    assert list(versions(vault)) == [1, 2]
    data = current(vault)
    assert data["username"] == "app" and data["note"] == keep and len(data["password"]) == 32
    assert writes(vault)[0]["body"]["options"] == {"cas": 1}
    assert not proj.leaked()


def test_overdue_secret_gates_run_until_applied(proj, vault, token):
    write_manifest(proj, vault)
    env = {"VAULT_TOKEN": token}
    assert proj.run("apply", env=env).status == 0
    first = current(vault)["password"]
    proj.register(first)
    vault.kv2_set_created_time(PATH, when=-40 * 86400)

    assert proj.run("plan", env=env).status == 2, "past max_age: drift"
    assert proj.run("plan", "--format", "json", env=env).status == 2
    r = proj.run("run", "--", "true", env=env)
    assert r.status == 0 and "past rotation.max_age (30d)" in r.stderr, "past max_age: run warns"
    vault.kv2_set_created_time(PATH, when=-50 * 86400)
    r = proj.run("run", "--", "true", env=env)
    assert r.status == 125 and "DB_PASSWORD" in r.stderr, "past fail_after: run refuses, naming the secret"

    r = proj.run("apply", env=env)
    assert r.status == 0, r
    register_stored(proj, vault)
    assert list(versions(vault)) == [1, 2]
    assert current(vault)["password"] != first
    assert proj.run("plan", env=env).status == 0
    assert proj.run("run", "--", "true", env=env).status == 0
    assert not proj.leaked()


def test_rotate_makes_a_new_version(proj, vault, token):
    keep = proj.secret()
    vault.kv2_put(PATH, {"other": keep})
    write_manifest(proj, vault)
    env = {"VAULT_TOKEN": token}
    assert proj.run("apply", env=env).status == 0
    assert proj.run("rotate", "DB_PASSWORD", env=env).status == 0
    register_stored(proj, vault)
    assert list(versions(vault)) == [1, 2, 3]
    assert versions(vault)[2]["data"]["password"] != current(vault)["password"]
    assert current(vault)["other"] == keep
    assert not proj.leaked()


def test_concurrent_applies_make_exactly_one_version(proj, vault, token):
    write_manifest(proj, vault)
    env = {"VAULT_TOKEN": token}
    assert proj.run("apply", env=env).status == 0
    vault.kv2_set_created_time(PATH, when=-40 * 86400)
    vault.clear_log()
    # both see version 1 overdue before either writes: latency on the reads lines them up
    vault.fault("latency", count=4, prefix=f"/v1/secret/data/{PATH}", ms=300)
    runs = [proj.spawn("apply", env=env) for _ in range(2)]
    results = [p.wait(timeout=60) for p in runs]
    register_stored(proj, vault)
    assert list(versions(vault)) == [1, 2], "exactly one new version"
    ok = [w for w in writes(vault) if w["status"] == 200]
    assert len(ok) == 1
    assert all(w["body"]["options"] == {"cas": 1} for w in writes(vault))
    # the loser found its check-and-set refused, looked again and saw a fresh secret
    assert [r.status for r in results] == [0, 0], results
    assert not proj.leaked()


def test_a_write_whose_answer_is_lost_is_still_ours(proj, vault, token):
    """Vault applies the write but the answer is lost (here a 503 after the write); the HTTP
    layer retries, check-and-set refuses the repeat, and apply must see that the version now
    current is its own (value compared), report it as written, and put it on the audit log."""
    write_manifest(proj, vault)
    env = {"VAULT_TOKEN": token}
    server = vault.server
    real = server.handle
    lost = []

    def handle(method, path, query, tok, body, **kw):
        result = real(method, path, query, tok, body, **kw)
        if method in ("POST", "PUT") and path == f"/v1/secret/data/{PATH}" and not lost:
            lost.append(path)
            raise VaultError(503, ["Vault is sealed"])
        return result

    server.handle = handle
    try:
        r = proj.run("apply", "--format", "json", env=env)
    finally:
        server.handle = real
    register_stored(proj, vault)
    assert lost and r.status == 0, r
    assert list(versions(vault)) == [1]
    doc = json.loads(r.stdout)
    assert doc["actions"] == [{"name": "DB_PASSWORD", "action": "create", "version": 1, "written": True}]
    item = doc["secrets"][0]
    assert item["state"] == "present" and item["action"] == "none" and doc["in_sync"] is True
    audit = (proj.base / "state" / "secrets-run" / "audit.jsonl").read_text()
    assert audit.count('"secret.write"') == 1
    assert not proj.leaked()
