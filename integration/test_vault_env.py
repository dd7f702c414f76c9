"""The Vault CLI's environment and conventions: paths URL-escaped segment by segment;
VAULT_NAMESPACE; VAULT_TOKEN, then the ~/.vault-token that `vault login` leaves (hidden from
the step like $VAULT_TOKEN); VAULT_AGENT_ADDR over VAULT_ADDR, a unix:// socket included,
with the agent adding its own token; BAO_* over VAULT_* as OpenBao's CLI reads them."""

import os

from test_vault import assert_nothing_leaked, same_step


def backend(vault, address=True, extra="", ca=True):
    ca = f"ca_cert: {vault.ca_path}, " if vault.ca_path and ca else ""
    addr = f'address: "{vault.addr}", ' if address else ""
    return f"v: {{type: vault, {addr}{ca}timeout: 5s, auth: {{method: token}}{extra}}}"


def one(proj, vault, path="secret/data/app", key="app", address=True, mount="secret", **kw):
    value = proj.secret()
    vault.kv2_put(key, {"k": value}, mount=mount, **kw)
    proj.standard_manifest(secrets_block=f'A: {{from: "v:{path}#k", owner: t}}',
                           backends=backend(vault, address))
    return same_step(proj, [("A", proj.expect(value))])


def test_path_segments_are_url_escaped(proj, vault):
    step = one(proj, vault, path="secret/data/my app/50%", key="my app/50%")
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    got = vault.requests(path="secret/data/my app/50%")
    assert got and got[0]["raw_path"] == "/v1/secret/data/my%20app/50%25", got
    assert vault.requests(path="sys/internal/ui/mounts/secret/data/my app/50%")


def test_namespace_from_vault_namespace(proj, vault_factory):
    vault = vault_factory(namespace="admin")
    step = one(proj, vault)
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token(), "VAULT_NAMESPACE": "admin"})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    assert {e["namespace"] for e in vault.requests()} == {"admin"}


def test_token_from_the_vault_login_file_hidden_from_the_step(proj, vault, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    token = proj.register(vault.create_token())
    (home / ".vault-token").write_text(token + "\n")
    (home / ".vault-token").chmod(0o600)
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app#k", owner: t}', backends=backend(vault))
    step = proj.script(f"""
        report same_A "$(same "$A_FILE" '{proj.expect(value)}')"
        report token_file "$(cat "$HOME/.vault-token" 2>/dev/null | wc -c)"
        """)
    r = proj.run("run", "--", step, env={"HOME": str(home), "VAULT_TOKEN": None})
    assert r.status == 0, r
    rep = proj.report()
    assert rep["same_A"] == "yes" and rep["token_file"] == "0", rep
    assert all(e["accessor"] == vault.token_info(token).accessor for e in vault.requests(prefix="secret/"))
    assert (home / ".vault-token").read_text() == token + "\n", "the caller's file is left as it was"
    assert not proj.leaked()


def test_no_token_anywhere_says_where_it_looked(proj, vault, tmp_path):
    one(proj, vault)
    r = proj.run("run", "--", "true", env={"HOME": str(tmp_path), "VAULT_TOKEN": None})
    assert r.status == 125, r
    assert "$VAULT_TOKEN is not set and there is no " + str(tmp_path) + "/.vault-token" in r.stderr, r


def test_vault_agent_addr_unix_socket_with_its_auto_auth_token(proj, vault, tmp_path):
    """VAULT_AGENT_ADDR wins over VAULT_ADDR (api/client.go); a unix:// socket is the agent's
    listener, and without a token of ours the agent adds its own."""
    sock = tmp_path / "agent.sock"
    agent_token = proj.register(vault.create_token())
    vault.serve_unix(sock, auto_auth_token=agent_token)
    step = one(proj, vault, address=False)
    r = proj.run("run", "--", step, env={"HOME": str(tmp_path), "VAULT_TOKEN": None,
                                         "VAULT_ADDR": "https://127.0.0.1:1",
                                         "VAULT_AGENT_ADDR": f"unix://{sock}"})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    reads = vault.requests(path="secret/data/app")
    assert reads and all(e["token_header"] == "agent" for e in reads)
    assert_nothing_leaked(proj, vault)


def test_bao_variables_win_over_vault_ones(proj, vault):
    """openbao api/env.go ReadBaoVariable: BAO_X when set, else VAULT_X; BAO_TOKEN is a
    credential like VAULT_TOKEN, kept from the step."""
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
                           backends=backend(vault, address=False, ca=False))
    step = proj.script(f"""
        report same_A "$(same "$A_FILE" '{proj.expect(value)}')"
        report bao_token "${{BAO_TOKEN+set}}"
        """)
    env = {"BAO_ADDR": vault.addr, "VAULT_ADDR": "https://127.0.0.1:1", "BAO_TOKEN": vault.create_token(),
           "VAULT_TOKEN": "not-the-token", "BAO_CACERT": vault.ca_path, "VAULT_CACERT": "/nonexistent"}
    r = proj.run("run", "--", step, env=env)
    assert r.status == 0, r
    assert proj.report() == {"same_A": "yes", "bao_token": ""}
