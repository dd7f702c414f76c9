"""Login by Kubernetes service account (the pod's projected token, with a role) and by TLS
client certificate (cert auth, the certificate from the manifest or VAULT_CLIENT_CERT /
VAULT_CLIENT_KEY): the token obtained is revoked at exit like any login's; the credentials
never reach the step or any output."""

import os
import subprocess
from pathlib import Path

import pytest

from test_vault import assert_nothing_leaked, same_step, vault_backend
from vault_server import _run_openssl

DEFAULT_SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def kv_one(proj, vault, auth, extra=""):
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
                           backends=vault_backend(vault, auth, extra=extra))
    return same_step(proj, [("A", proj.expect(value))])


def sa_token(proj, vault, tmp_path, name="runner", ns="ci"):
    f = tmp_path / "sa-token"
    f.write_text(proj.register(vault.k8s_token(name, ns)))
    return f


def test_kubernetes_login_with_the_service_account_token(proj, vault, tmp_path):
    vault.add_k8s_role("ci-build", service_accounts=["runner"], namespaces=["ci"])
    f = sa_token(proj, vault, tmp_path)
    step = kv_one(proj, vault, f"{{method: kubernetes, role: ci-build, token_file: {f}}}")
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    login = vault.requests(path="auth/kubernetes/login")
    assert [e["status"] for e in login] == [200]
    assert login[0]["body"]["role"] == "ci-build" and login[0]["body"]["jwt"] == "<redacted>"
    assert all(t.revoked for t in vault.tokens_issued()), "revoked at exit like any login"
    assert_nothing_leaked(proj, vault)


def test_kubernetes_service_account_not_bound_is_refused(proj, vault, tmp_path):
    vault.add_k8s_role("ci-build", service_accounts=["runner"], namespaces=["ci"])
    f = sa_token(proj, vault, tmp_path, name="intruder")
    kv_one(proj, vault, f"{{method: kubernetes, role: ci-build, token_file: {f}}}")
    r = proj.run("run", "--", "true")
    assert r.status == 125, r
    assert "login at auth/kubernetes failed: HTTP 403" in r.stderr and "service account name not authorized" in r.stderr, r
    assert_nothing_leaked(proj, vault)


@pytest.mark.skipif(os.path.exists(DEFAULT_SA_TOKEN), reason="this host is a pod")
def test_kubernetes_default_token_file_named_when_missing(proj, vault):
    vault.add_k8s_role("ci-build")
    kv_one(proj, vault, "{method: kubernetes, role: ci-build}")
    r = proj.run("run", "--", "true")
    assert r.status == 125, r
    assert DEFAULT_SA_TOKEN in r.stderr, r


def test_kubernetes_without_role_is_a_check_error(proj, vault):
    kv_one(proj, vault, "{method: kubernetes}")
    r = proj.run("check")
    assert r.status == 2, r
    assert "secrets.yaml:" in r.stderr + r.stdout and "SR006" in r.stdout + r.stderr
    assert "auth method kubernetes needs 'role'" in r.stdout + r.stderr, r


def client_pki(d):
    """A client CA and a client certificate (CN ci-runner, clientAuth) signed by it."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run_openssl(["req", "-x509", *ec, "-keyout", "client-ca.key", "-out", "client-ca.pem", "-days", "2",
                  "-subj", "/CN=secrets-run client CA", "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign"], d)
    _run_openssl(["req", "-new", *ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=ci-runner"], d)
    (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                               "extendedKeyUsage=clientAuth\n")
    _run_openssl(["x509", "-req", "-in", "client.csr", "-CA", "client-ca.pem", "-CAkey", "client-ca.key",
                  "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "ext.cnf"], d)
    (d / "client.key").chmod(0o600)
    return d / "client-ca.pem", d / "client.pem", d / "client.key"


def test_cert_login_with_the_manifests_client_certificate(proj, vault, tmp_path):
    ca, cert, key = client_pki(tmp_path / "client")
    vault.add_cert_role("ci", ca, "secrets-run client CA")
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    proj.standard_manifest(
        secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
        backends=vault_backend(vault, "{method: cert, name: ci}", extra=f"client_cert: {cert}, client_key: {key}"))
    step = proj.script(f"""
        report same_A "$(same "$A_FILE" '{proj.expect(value)}')"
        report key "$(cat '{key}' 2>/dev/null | wc -c)"
        """)
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    assert proj.report() == {"same_A": "yes", "key": "0"}, "the client key is hidden from the step"
    login = vault.requests(path="auth/cert/login")
    assert [e["status"] for e in login] == [200] and login[0]["body"] == {"name": "ci"}
    assert vault.tokens_issued()[0].display_name == "ci"
    assert all(t.revoked for t in vault.tokens_issued())
    proj.register(key.read_text())
    assert_nothing_leaked(proj, vault)


def test_cert_login_from_vault_client_cert_variables(proj, vault, tmp_path):
    ca, cert, key = client_pki(tmp_path / "client")
    vault.add_cert_role("ci", ca, "secrets-run client CA")
    step = kv_one(proj, vault, "{method: cert}")
    r = proj.run("run", "--", step, env={"VAULT_CLIENT_CERT": str(cert), "VAULT_CLIENT_KEY": str(key)})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"


def test_cert_login_without_a_certificate_says_what_it_needs(proj, vault, tmp_path):
    kv_one(proj, vault, "{method: cert}")
    r = proj.run("run", "--", "true")
    assert r.status == 125, r
    assert "cert login needs a client certificate" in r.stderr, r
