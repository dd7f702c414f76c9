"""The vault backend end to end against the Vault test double (integration/vault_server.py,
the `vault` fixture in conftest.py): KV v1/v2 fields, token/AppRole/JWT auth, dynamic
credentials and their leases, errors, retries and network faults. Steps compare what they
received with expected values in data/ and report yes/no; no value is ever printed."""

import signal
import time

import pytest


def vault_backend(vault, auth="{method: token}", extra="", address=None, timeout="5s"):
    ca = f"ca_cert: {vault.ca_path}, " if vault.ca_path else ""
    return (f"v: {{type: vault, address: \"{address or vault.addr}\", {ca}timeout: {timeout}, "
            f"auth: {auth}{', ' + extra if extra else ''}}}")


def secret_gets(vault):
    """The GETs of secrets: without the one token lookup a run makes for its audit log, and
    the mount lookups (sys/internal/ui/mounts/...)."""
    return [e for e in vault.requests(method="GET") if e["path"] != "/v1/auth/token/lookup-self"
            and not e["path"].startswith("/v1/sys/internal/ui/mounts/")]


def same_step(proj, pairs):
    """A step that reports same_<NAME>=yes|no for each (NAME, expected path)."""
    lines = [f"report same_{n} \"$(same \"${n}_FILE\" '{p}')\"" for n, p in pairs]
    return proj.script("\n".join(lines) + "\n")


def test_kv2_and_kv1_fields_delivered_with_caller_token_never_revoked(proj, vault):
    v2, v1 = proj.secret(), proj.secret()
    vault.kv2_put("app", {"password": v2, "other": proj.secret()})
    vault.kv1_put("legacy", {"key": v1})
    token = proj.register(vault.create_token())
    proj.standard_manifest(
        secrets_block="""
            A: {from: "v:secret/data/app#password", owner: t}
            B: {from: "v:kv/legacy#key", owner: t}
            """,
        backends=vault_backend(vault))
    step = same_step(proj, [("A", proj.expect(v2)), ("B", proj.expect(v1))])
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": token})
    assert r.status == 0, r
    rep = proj.report()
    assert rep["same_A"] == "yes" and rep["same_B"] == "yes"
    gets = secret_gets(vault)
    assert {e["path"] for e in gets} == {"/v1/secret/data/app", "/v1/kv/legacy"}
    assert all(e["vault_request"] for e in gets), "X-Vault-Request: true on every request"
    assert not vault.requests(path="auth/token/revoke-self"), "a caller's token is never revoked"
    assert vault.token_info(token).valid
    assert not proj.leaked()


def test_kv2_version_query(proj, vault):
    old, new = proj.secret(), proj.secret()
    vault.kv2_put("app", {"k": old})
    vault.kv2_put("app", {"k": new})
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app?version=1#k", owner: t}',
                           backends=vault_backend(vault))
    step = same_step(proj, [("A", proj.expect(old))])
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    assert secret_gets(vault)[0]["query"] == {"version": "1"}


def test_approle_login_token_revoked_at_exit(proj, vault):
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    proj.standard_manifest(
        secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
        backends=vault_backend(vault, "{method: approle, role_id_env: RID, secret_id_env: SID}"))
    step = same_step(proj, [("A", proj.expect(value))])
    r = proj.run("run", "--", step, env={"RID": vault.approle_role_id, "SID": vault.approle_secret_id})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    assert [e["status"] for e in vault.requests(path="auth/approle/login")] == [200]
    issued = vault.tokens_issued()
    assert len(issued) == 1 and issued[0].revoked, "the login token is revoked at exit"
    assert len(vault.requests(path="auth/token/revoke-self")) == 1
    assert_nothing_leaked(proj, vault)


def test_jwt_login_and_credentials_hidden_from_step(proj, vault):
    value = proj.secret()
    vault.kv1_put("app", {"k": value})
    jwt = proj.register(vault.jwt(role=vault.jwt_role))
    proj.standard_manifest(
        secrets_block='A: {from: "v:kv/app#k", owner: t}',
        backends=vault_backend(vault, "{method: jwt, role: ci, jwt_env: CI_JWT}"))
    expected = proj.expect(value)
    step = proj.script(f"""
        report same_A "$(same "$A_FILE" '{expected}')"
        report jwt "${{CI_JWT+set}}"
        """)
    r = proj.run("run", "--", step, env={"CI_JWT": jwt})
    assert r.status == 0, r
    rep = proj.report()
    assert rep["same_A"] == "yes" and rep["jwt"] == ""
    assert [e["status"] for e in vault.requests(path="auth/jwt/login")] == [200]
    assert all(t.revoked for t in vault.tokens_issued())
    assert not proj.leaked()


def db_manifest(proj, vault):
    proj.standard_manifest(
        secrets_block="""
            DB_USER: {from: "v:database/creds/app#username", owner: t}
            DB_PASS: {from: "v:database/creds/app#password", owner: t}
            """,
        backends=vault_backend(vault))


def assert_nothing_leaked(proj, vault):
    """No secret the double knows (tokens, secret IDs, passwords, KV values) in any output."""
    for value in vault.secret_values():
        proj.register(value)
    assert not proj.leaked()


def assert_one_lease_revoked(vault):
    creds = vault.requests(path="database/creds/app")
    assert len(creds) == 1, "two fields of one dynamic secret: one request"
    leases = list(vault.server.leases.values())
    assert len(leases) == 1 and leases[0].revoked, "the lease is revoked at exit"
    assert len(vault.requests(path="sys/leases/revoke")) == 1


def test_dynamic_creds_one_request_one_lease_revoked_after_success(proj, vault):
    db_manifest(proj, vault)
    step = proj.script("""
        report user "$(test -s "$DB_USER_FILE" && echo ok)"
        report pass "$(test -s "$DB_PASS_FILE" && echo ok)"
        """)
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    rep = proj.report()
    assert rep["user"] == "ok" and rep["pass"] == "ok"
    assert_one_lease_revoked(vault)
    assert_nothing_leaked(proj, vault)


def test_dynamic_lease_revoked_after_step_failure(proj, vault):
    db_manifest(proj, vault)
    step = proj.script("exit 3\n")
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 3, r
    assert_one_lease_revoked(vault)


def test_dynamic_lease_revoked_after_timeout(proj, vault):
    db_manifest(proj, vault)
    step = proj.script("sleep 30\n")
    r = proj.run("run", "--timeout", "1s", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 124, r
    assert_one_lease_revoked(vault)


def test_dynamic_lease_revoked_after_sigterm(proj, vault):
    db_manifest(proj, vault)
    step = proj.script("report started 1\nsleep 30\n")
    run = proj.spawn("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    deadline = time.monotonic() + 10
    while not proj.report().get("started") and time.monotonic() < deadline:
        time.sleep(0.05)
    run.signal(signal.SIGTERM)
    r = run.wait()
    assert r.status != 0, r
    assert_one_lease_revoked(vault)


def test_namespace_header_sent(proj, vault_factory):
    vault = vault_factory(namespace="team-a")
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
                           backends=vault_backend(vault, extra="namespace: team-a/"))
    step = same_step(proj, [("A", proj.expect(value))])
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    assert all(e["namespace"] == "team-a/" for e in vault.requests())


@pytest.mark.parametrize("case", ["403", "404", "field", "deleted", "destroyed"])
def test_errors_exit_125_naming_secret_path_and_cause(proj, vault, case):
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    path, token = "secret/data/app", vault.create_token()
    field = "k"
    if case == "403":
        token = "not-a-token"
    elif case == "404":
        path = "secret/data/absent"
    elif case == "field":
        field = "nope"
    elif case == "deleted":
        vault.kv2_delete("app")
    else:
        vault.kv2_destroy("app")
    proj.standard_manifest(secrets_block=f'MY_SECRET: {{from: "v:{path}#{field}", owner: t}}',
                           backends=vault_backend(vault))
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": token})
    assert r.status == 125, r
    line = [l for l in r.stderr.splitlines() if "MY_SECRET" in l]
    assert line, r
    assert path in line[0]
    cause = {"403": "permission denied", "404": "not found", "field": "no field 'nope'",
             "deleted": "deleted", "destroyed": "destroyed"}[case]
    assert cause in line[0], r
    assert_nothing_leaked(proj, vault)


@pytest.mark.parametrize("kind,count", [("429", 1), ("503", 2), ("500", 1), ("close", 1)])
def test_transient_faults_retried_then_success(proj, vault, kind, count):
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    vault.fault(kind, count=count, prefix="secret/")
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
                           backends=vault_backend(vault, timeout="10s"))
    step = same_step(proj, [("A", proj.expect(value))])
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert proj.report()["same_A"] == "yes"
    gets = vault.requests(path="secret/data/app")
    assert len(gets) == count + 1
    if kind == "429":
        assert gets[1]["time"] - gets[0]["time"] >= 0.9, "Retry-After: 1 honoured"


@pytest.mark.parametrize("kind", ["badjson", "truncated", "wrong_ca", "refused", "503"])
def test_faults_fail_with_125_within_the_timeout(proj, vault, kind):
    vault.kv2_put("app", {"k": proj.secret()})
    if kind == "refused":
        vault.refuse_connections()
    elif kind == "wrong_ca":
        vault.fault("wrong_ca")
    else:
        vault.fault(kind, prefix="secret/")
    proj.standard_manifest(secrets_block='MY_SECRET: {from: "v:secret/data/app#k", owner: t}',
                           backends=vault_backend(vault, timeout="3s"))
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token()}, timeout=30)
    assert r.status == 125, r
    assert r.elapsed < 3 + 3, "bounded by the backend's timeout"
    assert "MY_SECRET" in r.stderr and "secret/data/app" in r.stderr, r
    assert_nothing_leaked(proj, vault)


def test_plain_http_refused_off_loopback(proj, vault):
    proj.standard_manifest(secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
                           backends=vault_backend(vault, address="http://192.0.2.1:8200"))
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": "x" * 10})
    assert r.status != 0
    assert "http://" in r.stderr


def test_dynamic_lease_and_login_token_renewed_while_the_step_runs(proj, vault):
    """3 s TTL, 10 s step: renewals at about two thirds of the TTL keep the lease alive."""
    vault.add_approle("short", ttl=3, max_ttl=60, role_id="short-role", secret_id=proj.secret())
    sid = vault.server.approle_roles["approle"]["short-role"]["secret_ids"]
    proj.standard_manifest(
        secrets_block="""
            DB_USER: {from: "v:database/creds/app#username", owner: t}
            DB_PASS: {from: "v:database/creds/app#password", owner: t}
            """,
        backends=vault_backend(vault, "{method: approle, role_id_env: RID, secret_id_env: SID}"))
    step = proj.script("sleep 10\n")
    run = proj.spawn("run", "--", step, env={"RID": "short-role", "SID": next(iter(sid))})
    time.sleep(9)
    alive = vault.active_leases()
    login = vault.tokens_issued()
    r = run.wait()
    assert r.status == 0, r
    assert len(alive) == 1, "the 3 s lease is still alive 9 s into the step"
    assert login and login[0].renewals >= 3, "the 3 s login token is renewed too"
    renewals = vault.requests(path="sys/leases/renew")
    assert len(renewals) >= 3 and all(e["status"] == 200 for e in renewals)
    assert len(vault.requests(path="auth/token/renew-self")) >= 3
    lease = list(vault.server.leases.values())[0]
    assert lease.revoked and lease.renewals >= 3
    assert login[0].revoked
    assert_nothing_leaked(proj, vault)


def test_jwt_from_github_actions_oidc(proj, vault):
    """Without jwt_env, a jwt login asks the job's OIDC endpoint for a token for `audience`."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs, urlsplit

    request_token = proj.secret()
    jwt = proj.register(vault.jwt(role=vault.jwt_role))
    seen = []

    class OIDC(BaseHTTPRequestHandler):
        def do_GET(self):
            q = parse_qs(urlsplit(self.path).query)
            ok = self.headers.get("Authorization") == f"Bearer {request_token}"
            seen.append((ok, q.get("audience"), q.get("api-version")))
            body = json.dumps({"value": jwt} if ok else {"message": "no"}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), OIDC)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        value = proj.secret()
        vault.kv1_put("app", {"k": value})
        proj.standard_manifest(
            secrets_block='A: {from: "v:kv/app#k", owner: t}',
            backends=vault_backend(vault, f"{{method: jwt, role: ci, audience: \"{vault.jwt_audience}\"}}"))
        expected = proj.expect(value)
        step = proj.script(f"""
            report same_A "$(same "$A_FILE" '{expected}')"
            report req "${{ACTIONS_ID_TOKEN_REQUEST_TOKEN+set}}"
            """)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/token?api-version=2.0"
        r = proj.run("run", "--", step, env={"ACTIONS_ID_TOKEN_REQUEST_URL": url,
                                              "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token})
    finally:
        httpd.shutdown()
    assert r.status == 0, r
    rep = proj.report()
    assert rep["same_A"] == "yes" and rep["req"] == ""
    assert seen == [(True, [vault.jwt_audience], ["2.0"])]
    assert [e["status"] for e in vault.requests(path="auth/jwt/login")] == [200]
    assert not proj.leaked()


def test_response_over_1_mib_refused(proj, vault):
    vault.kv1_put("big", {"k": "x" * (1024 * 1024 + 16)})
    proj.standard_manifest(secrets_block='MY_SECRET: {from: "v:kv/big#k", owner: t}',
                           backends=vault_backend(vault))
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 125, r
    assert "MY_SECRET" in r.stderr and "larger than" in r.stderr, r


def many_paths(proj, vault, n=20):
    """n KV v2 paths p0..p{n-1}, one secret S<i> each; returns (secrets block, step)."""
    values = [proj.secret() for _ in range(n)]
    for i, v in enumerate(values):
        vault.kv2_put(f"p{i}", {"k": v})
    block = "\n".join(f'S{i}: {{from: "v:secret/data/p{i}#k", owner: t}}' for i in range(n))
    step = same_step(proj, [(f"S{i}", proj.expect(v)) for i, v in enumerate(values)])
    return block, step


def test_independent_paths_fetched_concurrently(proj, vault):
    """20 paths at 200 ms each would take 4 s one by one; fetched together, well under 2 s."""
    block, step = many_paths(proj, vault)
    vault.fault("latency", ms=200)
    proj.standard_manifest(secrets_block=block, backends=vault_backend(vault, timeout="10s"))
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert r.elapsed < 2.0, f"{r.elapsed:.2f} s: not concurrent"
    rep = proj.report()
    assert all(rep[f"same_S{i}"] == "yes" for i in range(20)), rep
    gets = secret_gets(vault)
    assert sorted(e["path"] for e in gets) == sorted(f"/v1/secret/data/p{i}" for i in range(20)), \
        "each path requested once"
    assert_nothing_leaked(proj, vault)


def test_sequential_switch_fetches_one_by_one(proj, vault):
    block, step = many_paths(proj, vault, n=5)
    vault.fault("latency", ms=200)
    proj.standard_manifest(secrets_block=block, backends=vault_backend(vault, timeout="10s"))
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token(),
                                         "SECRETS_RUN_VAULT_SEQUENTIAL": "1"})
    assert r.status == 0, r
    assert r.elapsed >= 1.0, "5 × 200 ms one after another"
    assert all(v == "yes" for k, v in proj.report().items() if k.startswith("same_"))
    assert len(secret_gets(vault)) == 5


def test_retries_under_concurrency(proj, vault):
    """A 429 (Retry-After: 1) on one path is retried on its own; the others are not asked twice."""
    block, step = many_paths(proj, vault)
    vault.fault("429", count=1, prefix="secret/data/p7")
    vault.fault("503", count=1, prefix="secret/data/p13")
    proj.standard_manifest(secrets_block=block, backends=vault_backend(vault, timeout="10s"))
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    rep = proj.report()
    assert all(rep[f"same_S{i}"] == "yes" for i in range(20)), rep
    p7 = vault.requests(path="secret/data/p7")
    assert [e["status"] for e in p7] == [429, 200]
    assert p7[1]["time"] - p7[0]["time"] >= 0.9, "Retry-After: 1 honoured"
    assert [e["status"] for e in vault.requests(path="secret/data/p13")] == [503, 200]
    for i in set(range(20)) - {7, 13}:
        assert len(vault.requests(path=f"secret/data/p{i}")) == 1
    assert_nothing_leaked(proj, vault)


def test_permanent_error_under_concurrency_names_secret_and_path(proj, vault):
    block, _ = many_paths(proj, vault, n=6)
    block += '\nMISSING: {from: "v:secret/data/nope#k", owner: t}'
    proj.standard_manifest(secrets_block=block, backends=vault_backend(vault))
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 125, r
    assert "MISSING" in r.stderr and "secret/data/nope" in r.stderr and "not found" in r.stderr, r
    assert len(vault.requests(path="secret/data/nope")) == 1
    assert_nothing_leaked(proj, vault)


def test_renewal_increment_capped_by_policy_max_ttl(proj, vault):
    """The database lease is granted 3 s; with policy.max_ttl 2s no renewal asks for more."""
    proj.standard_manifest(
        secrets_block='DB_PASS: {from: "v:database/creds/app#password", owner: t}',
        backends=vault_backend(vault), policy="max_ttl: 2s")
    step = proj.script("sleep 4\n")
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    renewals = vault.requests(path="sys/leases/renew")
    assert renewals, "the lease was renewed"
    assert all(0 < int(e["body"]["increment"]) <= 2 for e in renewals), [e["body"] for e in renewals]
    assert_nothing_leaked(proj, vault)


def test_connection_close_and_persistent_503_under_concurrency(proj, vault):
    """A dropped connection on one path is retried; a path that stays 503 fails the run with
    125 within the backend's timeout, naming its secret and path."""
    block, _ = many_paths(proj, vault, n=6)
    vault.fault("close", count=1, prefix="secret/data/p2")
    vault.fault("503", prefix="secret/data/p4")
    proj.standard_manifest(secrets_block=block, backends=vault_backend(vault, timeout="3s"))
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token()}, timeout=30)
    assert r.status == 125, r
    assert r.elapsed < 3 + 3, "bounded by the backend's timeout"
    assert "S4" in r.stderr and "secret/data/p4" in r.stderr and "gave up" in r.stderr, r
    assert len(vault.requests(path="secret/data/p2")) == 2
    assert len(vault.requests(path="secret/data/p4")) >= 2
    assert_nothing_leaked(proj, vault)


def test_backend_credential_variables_hidden_from_step(proj, vault):
    """The variables the backend declares it takes credentials from never reach the step:
    the token variable (whatever the auth method) and an AppRole's role and secret id."""
    value = proj.secret()
    vault.kv2_put("app", {"k": value})
    proj.standard_manifest(
        secrets_block='A: {from: "v:secret/data/app#k", owner: t}',
        backends=vault_backend(vault, "{method: approle, role_id_env: RID, secret_id_env: SID}"))
    step = proj.script("""
        report rid "${RID+set}"
        report sid "${SID+set}"
        report token "${VAULT_TOKEN+set}"
        report unrelated "${UNRELATED+set}"
        """)
    r = proj.run("run", "--", step, env={"RID": vault.approle_role_id, "SID": vault.approle_secret_id,
                                         "VAULT_TOKEN": vault.create_token(), "UNRELATED": "kept"})
    assert r.status == 0, r
    assert proj.report() == {"rid": "", "sid": "", "token": "", "unrelated": "set"}
    assert_nothing_leaked(proj, vault)


def test_backend_messages_are_printed_by_the_agent(proj, vault):
    """Backends print nothing: what they say (renewals on the renewal thread, revocations,
    retries) reaches stderr through their events, at its level: info only with -v, a
    failed revocation always."""
    db_manifest(proj, vault)
    vault.fault("503", count=1, prefix="/v1/database/creds/app")
    r = proj.run("-v", "run", "--", proj.script("sleep 3\n"), env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    lease = list(vault.server.leases)[0]
    assert f"backend 'v' (vault): renewed {lease} for " in r.stderr, r
    assert f"backend 'v' (vault): revoked {lease}" in r.stderr, r
    assert "GET /v1/database/creds/app: " in r.stderr and ", retrying in " in r.stderr, r

    vault.fault("503", prefix="/v1/sys/leases/revoke")
    r = proj.run("run", "--", "true", env={"VAULT_TOKEN": vault.create_token()})
    assert r.status == 0, r
    assert "warning: backend 'v' (vault): could not revoke " in r.stderr and "HTTP 503" in r.stderr, r
    assert "renewed" not in r.stderr and "retrying" not in r.stderr, "info messages need -v"
    assert_nothing_leaked(proj, vault)
