"""Mount and KV version from sys/internal/ui/mounts/<path>, as Vault's CLI asks
(command/kv_helpers.go), not guessed from the path: mounts of several segments, a namespace
in the path, a KV v1 key under a folder named data/; one lookup per mount; the answer's shape
when the lookup is denied; Vault's hint on a KV v2 path outside data/."""

from test_vault import assert_nothing_leaked, same_step, vault_backend


def lookups(vault):
    return vault.requests(prefix="sys/internal/ui/mounts/")


def run_same(proj, vault, pairs, token=None, extra="", env=None):
    """Runs a step reporting same_<NAME> for each (NAME, from, value)."""
    block = "\n".join(f'{n}: {{from: "v:{ref}", owner: t}}' for n, ref, _ in pairs)
    proj.standard_manifest(secrets_block=block, backends=vault_backend(vault, extra=extra))
    step = same_step(proj, [(n, proj.expect(v)) for n, _, v in pairs])
    e = {"VAULT_TOKEN": token or vault.create_token()}
    e.update(env or {})
    return proj.run("run", "--", step, env=e)


def test_mount_of_several_segments_namespace_in_path_and_kv1_under_data(proj, vault):
    """apps/team/ is KV v2 (its second segment is not "data"), ns1/secret/ is KV v2 in a
    namespace named in the path, kv/data/x is a KV v1 key: each is read as what its mount
    is. The old guess ("second segment is data") got all three wrong."""
    a, b, c = proj.secret(), proj.secret(), proj.secret()
    vault.add_kv2_mount("apps/team")
    vault.kv2_put("app", {"k": a}, mount="apps/team")
    vault.add_namespace("ns1")
    vault.add_kv2_mount("secret", namespace="ns1")
    vault.kv2_put("x", {"k": b}, mount="secret", namespace="ns1")
    vault.kv1_put("data/x", {"k": c})
    r = run_same(proj, vault, [("A", "apps/team/data/app#k", a), ("B", "ns1/secret/data/x#k", b),
                               ("C", "kv/data/x#k", c)])
    assert r.status == 0, r
    assert proj.report() == {"same_A": "yes", "same_B": "yes", "same_C": "yes"}
    asked = sorted(e["path"] for e in lookups(vault))
    assert asked == ["/v1/sys/internal/ui/mounts/apps/team/data/app", "/v1/sys/internal/ui/mounts/kv/data/x",
                     "/v1/sys/internal/ui/mounts/ns1/secret/data/x"], asked
    assert_nothing_leaked(proj, vault)


def test_one_lookup_per_mount(proj, vault):
    """Five paths in two mounts (one of two segments): two lookups, cached for the run; the
    version and creation time of the KV v2 ones are still recorded."""
    vault.add_kv2_mount("apps/team")
    values = [proj.secret() for _ in range(5)]
    for i in range(3):
        vault.kv2_put(f"p{i}", {"k": values[i]}, mount="apps/team")
    for i in range(3, 5):
        vault.kv2_put(f"p{i}", {"k": values[i]})
    pairs = [(f"S{i}", f"apps/team/data/p{i}#k" if i < 3 else f"secret/data/p{i}#k", values[i]) for i in range(5)]
    r = run_same(proj, vault, pairs)
    assert r.status == 0, r
    assert all(v == "yes" for v in proj.report().values())
    assert len(lookups(vault)) == 2, [e["path"] for e in lookups(vault)]


def test_sequential_fetch_looks_up_each_mount_once(proj, vault):
    values = [proj.secret() for _ in range(3)]
    for i, v in enumerate(values):
        vault.kv2_put(f"q{i}", {"k": v})
    r = run_same(proj, vault, [(f"S{i}", f"secret/data/q{i}#k", v) for i, v in enumerate(values)],
                 env={"SECRETS_RUN_VAULT_SEQUENTIAL": "1"})
    assert r.status == 0, r
    assert len(lookups(vault)) == 1


def test_denied_lookup_falls_back_to_the_answers_shape(proj, vault):
    """Without access to sys/internal/ui/mounts (403, as Vault answers a token with no access
    to the mount) a KV v2 answer is still told by its shape (data.data, data.metadata)."""
    vault.server.ui_mounts = "denied"
    a, c = proj.secret(), proj.secret()
    vault.add_kv2_mount("apps/team")
    vault.kv2_put("app", {"k": a}, mount="apps/team")
    vault.kv1_put("data/x", {"k": c})
    r = run_same(proj, vault, [("A", "apps/team/data/app#k", a), ("C", "kv/data/x#k", c)])
    assert r.status == 0, r
    assert proj.report() == {"same_A": "yes", "same_C": "yes"}
    assert lookups(vault) and all(e["status"] == 403 for e in lookups(vault))


def test_old_vault_without_the_endpoint_is_asked_once(proj, vault):
    vault.server.ui_mounts = "absent"
    values = [proj.secret() for _ in range(3)]
    for i, v in enumerate(values):
        vault.kv2_put(f"q{i}", {"k": v})
    r = run_same(proj, vault, [(f"S{i}", f"secret/data/q{i}#k", v) for i, v in enumerate(values)],
                 env={"SECRETS_RUN_VAULT_SEQUENTIAL": "1"})
    assert r.status == 0, r
    assert len(lookups(vault)) == 1, "a 404 means no such endpoint: not asked again"


def test_kv2_path_outside_data_names_the_api_path(proj, vault):
    """secret/app on a KV v2 mount: Vault answers 404 with a warning (the KV plugin's
    pathInvalid); the error names the API path the reference needs."""
    vault.kv2_put("app", {"k": proj.secret()})
    proj.standard_manifest(secrets_block='MY_SECRET: {from: "v:secret/app#k", owner: t}',
                           backends=vault_backend(vault))
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 125, r
    line = [l for l in r.stderr.splitlines() if "MY_SECRET" in l and "error:" in l]
    assert line and "secret/ is a KV v2 mount: the API path is secret/data/app" in line[0], r


def test_plan_and_apply_on_a_mount_of_several_segments_and_refuse_kv1_under_data(proj, vault):
    """plan/apply write KV v2 with check-and-set: apps/team/data/db is KV v2 (the old guess
    said no), kv/data/db is a KV v1 key (the old guess said KV v2, and would have written
    the check-and-set envelope into it)."""
    vault.add_kv2_mount("apps/team")
    ca = f"ca_cert: {vault.ca_path}, " if vault.ca_path else ""
    proj.standard_manifest(
        secrets_block="""
            DB_PASSWORD: {from: "vault:apps/team/data/db#password", generate: {length: 32, store: true}, owner: t}
            """,
        backends=f"vault: {{type: vault, address: \"{vault.addr}\", {ca}timeout: 5s, auth: {{method: token}}}}")
    env = {"VAULT_TOKEN": proj.register(vault.create_token())}
    assert proj.run("plan", env=env).status == 2, "missing: drift"
    r = proj.run("apply", env=env)
    assert r.status == 0, r
    entry = vault.server.kv2["apps/team"]["paths"]["db"]
    assert list(entry["versions"]) == [1]
    proj.register(entry["versions"][1]["data"]["password"])
    assert proj.run("plan", env=env).status == 0, "in sync"

    proj.standard_manifest(
        secrets_block="""
            DB_PASSWORD: {from: "vault:kv/data/db#password", generate: {length: 32, store: true}, owner: t}
            """,
        backends=f"vault: {{type: vault, address: \"{vault.addr}\", {ca}timeout: 5s, auth: {{method: token}}}}")
    r = proj.run("plan", env=env)
    assert "kv/ is a KV v1 mount" in r.stdout + r.stderr, r
    proj.run("apply", env=env)
    assert "data/db" not in vault.server.kv1["kv"], "nothing written to the KV v1 mount"
    assert not vault.requests(path="kv/data/db"), "not even read"
    assert not proj.leaked()
