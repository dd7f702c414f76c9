"""Where the Vault backend's private CA comes from: `ca_cert` relative to the manifest's
directory (wherever secrets-run is started), else $VAULT_CACERT as Vault's CLI reads it;
without either the test double's throwaway CA is unknown and TLS verification fails."""

import shutil

from test_vault import same_step


def _manifest(proj, vault, ca_line):
    proj.standard_manifest(
        secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
        backends=f'v: {{type: vault, address: "{vault.addr}", {ca_line}timeout: 5s, auth: {{method: token}}}}')


def test_relative_ca_cert_is_next_to_the_manifest(proj, vault):
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    shutil.copy(vault.ca_path, proj.dir / "vault-ca.pem")
    _manifest(proj, vault, "ca_cert: vault-ca.pem, ")
    step = same_step(proj, [("A", proj.expect(value))])
    elsewhere = proj.base / "elsewhere"   # not the manifest's directory
    elsewhere.mkdir()
    r = proj.run("-f", proj.dir / "secrets.yaml", "--", step, cwd=elsewhere,
                 env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"


def test_vault_cacert_variable_when_the_manifest_names_no_ca(proj, vault):
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    _manifest(proj, vault, "")
    step = same_step(proj, [("A", proj.expect(value))])
    token = vault.create_token()
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": token, "VAULT_CACERT": str(vault.ca_path)})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": token})
    assert r.status == 125 and "secret A" in r.stderr, r
