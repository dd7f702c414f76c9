"""plan surveys Vault paths concurrently, as run fetches them: 20 KV v2 paths at 200 ms each
would take 4 s one by one. Each answer serves one stat only: apply's second look after a
write sees the write."""

from test_vault import assert_nothing_leaked


def manifest(proj, vault, n=20):
    ca = f"ca_cert: {vault.ca_path}, " if vault.ca_path else ""
    block = "\n".join(f'S{i}: {{from: "v:secret/data/p{i}#k", owner: t}}' for i in range(n))
    proj.standard_manifest(secrets_block=block,
                           backends=f"v: {{type: vault, address: \"{vault.addr}\", {ca}timeout: 10s, auth: {{method: token}}}}")


def test_plan_surveys_concurrently(proj, vault):
    for i in range(20):
        vault.kv2_put(f"p{i}", {"k": proj.secret()})
    manifest(proj, vault)
    vault.fault("latency", ms=200)
    r = proj.run("plan", env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert r.elapsed < 2.0, f"{r.elapsed:.2f} s: not concurrent"
    reads = [e for e in vault.requests(prefix="secret/data/") if e["method"] == "GET"]
    assert sorted(e["path"] for e in reads) == sorted(f"/v1/secret/data/p{i}" for i in range(20)), "each once"
    assert len(vault.requests(prefix="sys/internal/ui/mounts/")) == 1
    assert_nothing_leaked(proj, vault)


def test_a_missing_path_among_many_is_reported(proj, vault):
    for i in range(4):
        vault.kv2_put(f"p{i}", {"k": proj.secret()})
    manifest(proj, vault, n=5)
    r = proj.run("plan", env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 2, r
    assert "S4" in r.stdout, r


def test_apply_after_the_survey_still_sees_its_write(proj, vault):
    ca = f"ca_cert: {vault.ca_path}, " if vault.ca_path else ""
    block = "\n".join(f'G{i}: {{from: "v:secret/data/g{i}#k", generate: {{length: 32, store: true}}, owner: t}}'
                      for i in range(3))
    proj.standard_manifest(secrets_block=block,
                           backends=f"v: {{type: vault, address: \"{vault.addr}\", {ca}timeout: 10s, auth: {{method: token}}}}")
    env = {"VAULT_TOKEN": vault.create_token()}
    r = proj.run("apply", env=env)
    assert r.status == 0, r
    for i in range(3):
        for v in vault.server.kv2["secret"]["paths"][f"g{i}"]["versions"].values():
            proj.register(v["data"]["k"])
    assert proj.run("plan", env=env).status == 0, "in sync"
    r = proj.run("apply", env=env)
    assert r.status == 0 and all(len(vault.server.kv2["secret"]["paths"][f"g{i}"]["versions"]) == 1 for i in range(3)), r
    assert not proj.leaked()
