"""PKI: `from: vault:pki/issue/ROLE#FIELD` with `params` issues an ephemeral certificate
(one POST per run, shared by its fields: certificate, private_key, issuing_ca), revoked at
exit: by its lease when the role generates one, else by serial (MOUNT/revoke): Vault's
roles issue without a lease by default (builtin/logical/pki/path_roles.go)."""

from test_vault import assert_nothing_leaked, vault_backend
from test_vault_audit import records

PARAMS = "params: {common_name: test.internal, ttl: 10m}"


def pki_manifest(proj, vault, role="web", auth="{method: token}"):
    proj.standard_manifest(
        secrets_block=f"""
            TLS_CERT: {{from: "v:pki/issue/{role}#certificate", {PARAMS}, owner: t}}
            TLS_KEY: {{from: "v:pki/issue/{role}#private_key", {PARAMS}, owner: t}}
            TLS_CA: {{from: "v:pki/issue/{role}#issuing_ca", {PARAMS}, owner: t}}
            """,
        backends=vault_backend(vault, auth))


STEP = """
    report chain "$(openssl verify -CAfile "$TLS_CA_FILE" "$TLS_CERT_FILE" >/dev/null 2>&1 && echo ok)"
    a=$(openssl x509 -in "$TLS_CERT_FILE" -noout -pubkey | sha256sum)
    b=$(openssl pkey -in "$TLS_KEY_FILE" -pubout | sha256sum)
    report pair "$([ "$a" = "$b" ] && echo ok)"
    report cn "$(openssl x509 -in "$TLS_CERT_FILE" -noout -subject | sed 's/.*CN *= *//')"
    """


def test_certificate_issued_once_delivered_and_revoked_by_serial(proj, vault, tmp_path):
    vault.add_pki_role("web", directory=tmp_path / "pki")
    pki_manifest(proj, vault)
    r = proj.run("run", "--", proj.script(STEP), env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert proj.report() == {"chain": "ok", "pair": "ok", "cn": "test.internal"}
    issues = vault.requests(path="pki/issue/web")
    assert len(issues) == 1 and issues[0]["method"] == "POST", "three fields, one certificate"
    assert issues[0]["body"] == {"common_name": "test.internal", "ttl": "10m"}
    (serial, cert), = vault.server.pki_certs.items()
    assert cert["revoked"], "revoked at exit"
    assert [e["body"] for e in vault.requests(path="pki/revoke")] == [{"serial_number": serial}]
    assert [e["lease"] for e in records(proj, "lease.revoke")] == [f"certificate {serial}"]
    assert_nothing_leaked(proj, vault)


def test_leased_certificate_goes_with_the_login_token(proj, vault, tmp_path):
    vault.add_pki_role("leased", directory=tmp_path / "pki", generate_lease=True)
    rid, sid = vault.add_approle("pki", role_id="pki-role", secret_id=proj.secret())
    pki_manifest(proj, vault, role="leased", auth="{method: approle, role_id_env: RID, secret_id_env: SID}")
    r = proj.run("run", "--", proj.script(STEP), env={"RID": rid, "SID": sid})
    assert r.status == 0, r
    assert proj.report()["pair"] == "ok"
    lease = [l for l in vault.server.leases.values() if l.id.startswith("pki/issue/leased/")]
    assert len(lease) == 1 and lease[0].revoked
    assert not vault.requests(path="pki/revoke") and not vault.requests(path="sys/leases/revoke")
    assert_nothing_leaked(proj, vault)


def test_revocation_refused_by_the_default_policy_is_recorded(proj, vault, tmp_path):
    vault.add_pki_role("web", directory=tmp_path / "pki")
    pki_manifest(proj, vault)
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token(policies=("default",))})
    assert r.status == 0, r
    failed = records(proj, "lease.revoke_failed")
    assert len(failed) == 1 and failed[0]["lease"].startswith("certificate ") and "403" in failed[0]["reason"]
    assert_nothing_leaked(proj, vault)


def test_plan_issues_nothing(proj, vault, tmp_path):
    vault.add_pki_role("web", directory=tmp_path / "pki")
    pki_manifest(proj, vault)
    r = proj.run("plan", env={"VAULT_TOKEN": vault.create_token()})
    assert r.status in (0, 2), r
    assert not vault.requests(path="pki/issue/web"), "a plan issues no certificate"


def test_params_on_a_backend_that_takes_none_is_a_check_error(proj):
    proj.standard_manifest(secrets_block=f'A: {{from: "ci:A", {PARAMS}, owner: t}}', backends="ci: {type: env}")
    r = proj.run("check")
    assert r.status == 1, r
    assert "SR114" in r.stdout and "only a vault backend takes" in r.stdout and "secrets.yaml:" in r.stdout, r
    proj.standard_manifest(secrets_block=f'A: {{from: "v:pki/issue/web?version=2#certificate", {PARAMS}, owner: t}}',
                           backends="v: {type: vault, address: 'https://127.0.0.1:1'}")
    r = proj.run("check")
    assert r.status == 2 and "cannot be pinned to a version" in r.stdout + r.stderr, r
