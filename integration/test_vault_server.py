"""Tests of the Vault test double itself (integration/vault_server.py), with urllib + ssl.

Shapes are checked against the documented samples in /work/shared/vault-api: the top level of
every success is exactly the full envelope; the data/auth objects have exactly the sample's keys
where the sample shows the whole object, and at least the sample's keys where it is a partial
one (auth objects are compared with token-create's, the fullest auth sample)."""

import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from vault_server import ENVELOPE_KEYS, REDACTED, make_jwt

SAMPLES = Path("/work/shared/vault-api")
ENVELOPE = set(ENVELOPE_KEYS)

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="vault-api samples not present")


def sample(name):
    return json.loads((SAMPLES / f"{name}.json").read_text())


def keys(obj):
    return set(obj) if isinstance(obj, dict) else set()


FREE_FORM = {"metadata", "custom_metadata", "meta"}   # user-defined maps: keys not compared


def assert_same_keys(got, want, where=""):
    """Recursive key-set equality of dicts (values of other types are not compared; the
    free-form user maps in FREE_FORM are not descended into)."""
    assert isinstance(got, dict), f"{where}: {type(got).__name__}, want an object"
    assert set(got) == set(want), f"{where}: keys {sorted(got)} != sample {sorted(want)}"
    for k, v in want.items():
        if isinstance(v, dict) and isinstance(got[k], dict) and k not in FREE_FORM:
            assert_same_keys(got[k], v, f"{where}.{k}")


def call(v, method, path, body=None, token=None, headers=None, ca=None, timeout=10,
         raw=False):
    """(status, headers, parsed JSON or None | raw bytes) for one request to the double."""
    url = v.addr + (path if path.startswith("/v1/") else "/v1/" + path)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("X-Vault-Token", token)
    for k, val in (headers or {}).items():
        req.add_header(k, val)
    ctx = None
    if url.startswith("https:"):
        ctx = ssl.create_default_context(cafile=ca or v.ca_path)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
            status, hdrs, payload = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, payload = e.code, e.headers, e.read()
    if raw:
        return status, hdrs, payload
    return status, hdrs, json.loads(payload) if payload else None


def get(v, path, **kw):
    return call(v, "GET", path, token=kw.pop("token", v.root_token), **kw)


def post(v, path, body=None, **kw):
    return call(v, "POST", path, body, token=kw.pop("token", v.root_token), **kw)


def assert_error(status, body, code, texts=None):
    assert body is not None and set(body) == {"errors"}, body
    assert isinstance(body["errors"], list)
    assert status == code
    if texts is not None:
        assert body["errors"] == texts


def approle_login(v):
    st, _, body = call(v, "POST", "auth/approle/login",
                       {"role_id": v.approle_role_id, "secret_id": v.approle_secret_id})
    assert st == 200, body
    return body


# ---------------------------------------------------------------- shapes

def test_health_matches_sample_and_needs_no_token(vault):
    st, _, body = call(vault, "GET", "sys/health")
    assert st == 200
    assert_same_keys(body, sample("sys-health.response"))
    assert body["sealed"] is False and body["initialized"] is True


def test_kv2_read_envelope_and_data_match_samples(vault):
    vault.kv2_put("app/db", {"password": "x1", "user": "y1"})
    st, _, body = get(vault, "secret/data/app/db")
    assert st == 200
    env = sample("kv2-read-envelope.response")
    assert set(body) == ENVELOPE == set(env)
    assert_same_keys(body["data"]["metadata"], env["data"]["metadata"], "metadata")
    assert set(body["data"]) == set(sample("kv2-read.response")["data"])
    assert body["data"]["data"] == {"password": "x1", "user": "y1"}
    assert body["lease_id"] == "" and body["lease_duration"] == 0
    assert body["mount_type"] == "kv" and body["data"]["metadata"]["version"] == 1
    assert body["data"]["metadata"]["created_time"].endswith("Z")


def test_kv2_write_matches_samples_and_cas(vault):
    req = sample("kv2-write.request")      # cas 0: only if absent
    st, _, body = post(vault, "secret/data/w", {"options": req["options"], "data": {"a": "1"}})
    assert st == 200
    env = sample("kv2-write-envelope.response")
    assert set(body) == ENVELOPE
    assert_same_keys(body["data"], env["data"], "data")
    assert_same_keys(body["data"], sample("kv2-write.response")["data"], "data")
    assert body["data"]["version"] == 1
    st, _, body = post(vault, "secret/data/w", {"options": {"cas": 0}, "data": {"a": "2"}})
    assert_error(st, body, 400, ["check-and-set parameter did not match the current version"])
    st, _, body = call(vault, "PUT", "secret/data/w", {"options": {"cas": 1}, "data": {"a": "3"}},
                       token=vault.root_token)
    assert st == 200 and body["data"]["version"] == 2
    st, _, body = post(vault, "secret/data/w", {"data": {"a": "4"}})
    assert st == 200 and body["data"]["version"] == 3
    vault.add_kv2_mount("strict", cas_required=True)
    st, _, body = post(vault, "strict/data/x", {"data": {"a": "1"}})
    assert_error(st, body, 400, ["check-and-set parameter required for this call"])


def test_kv2_metadata_matches_sample(vault):
    for i in range(3):
        vault.kv2_put("m", {"v": str(i)})
    st, _, body = get(vault, "secret/metadata/m")
    assert st == 200 and set(body) == ENVELOPE
    want = sample("kv2-metadata-read.response")["data"]
    assert set(body["data"]) == set(want)
    assert set(body["data"]["versions"]) == {"1", "2", "3"}
    for n in ("1", "2", "3"):
        assert set(body["data"]["versions"][n]) == set(want["versions"][n])
    assert body["data"]["current_version"] == 3


def test_kv2_versions_soft_delete_destroy(vault):
    vault.kv2_put("p", {"k": "one"})
    vault.kv2_put("p", {"k": "two"})
    vault.kv2_put("p", {"k": "three"})
    st, _, body = get(vault, "secret/data/p?version=1")
    assert st == 200 and body["data"]["data"] == {"k": "one"}
    st, _, body = get(vault, "secret/data/p?version=0")
    assert st == 200 and body["data"]["data"] == {"k": "three"}
    vault.kv2_delete("p")                                  # latest soft-deleted
    st, _, body = get(vault, "secret/data/p")
    assert st == 404 and set(body) == ENVELOPE and body["data"]["data"] is None
    assert body["data"]["metadata"]["deletion_time"] != ""
    assert body["data"]["metadata"]["destroyed"] is False
    st, _, body = get(vault, "secret/data/p?version=2")
    assert st == 200 and body["data"]["data"] == {"k": "two"}
    vault.kv2_destroy("p", 2)
    st, _, body = get(vault, "secret/data/p?version=2")
    assert st == 404 and body["data"]["data"] is None
    assert body["data"]["metadata"]["destroyed"] is True
    assert body["data"]["metadata"]["deletion_time"] == ""
    # a deletion_time still in the future reads normally (delete_version_after)
    vault.kv2_delete("p", 1, when=time.time() + 3600)
    st, _, body = get(vault, "secret/data/p?version=1")
    assert st == 200 and body["data"]["data"] == {"k": "one"}
    st, _, body = get(vault, "secret/data/p?version=9")
    assert_error(st, body, 404, [])
    st, _, body = get(vault, "secret/data/nope")
    assert_error(st, body, 404, [])
    st, _, body = get(vault, "secret/metadata/nope")
    assert_error(st, body, 404, [])
    # cas applies to soft-deleted keys too: current version is still 3
    st, _, body = post(vault, "secret/data/p", {"options": {"cas": 3}, "data": {"k": "four"}})
    assert st == 200 and body["data"]["version"] == 4


def test_kv2_set_created_time(vault):
    vault.kv2_put("aged", {"k": "v"})
    vault.kv2_set_created_time("aged", when=-86400 * 10)
    st, _, body = get(vault, "secret/data/aged")
    created = body["data"]["metadata"]["created_time"]
    import datetime as dt
    t = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    assert abs(time.time() - t.timestamp() - 86400 * 10) < 5


def test_kv1_read_matches_sample(vault):
    vault.kv1_put("app/cfg", {"foo": "bar", "ttl": "1h"})
    vault.kv1_put("plain", {"foo": "bar"})
    st, _, body = get(vault, "kv/app/cfg")
    assert st == 200 and set(body) == ENVELOPE
    assert set(sample("kv1-read.response")) <= set(body)
    assert body["data"] == {"foo": "bar", "ttl": "1h"}
    assert body["lease_id"] == "" and body["lease_duration"] == 3600
    assert body["renewable"] is False
    st, _, body = get(vault, "kv/plain")
    assert st == 200 and body["lease_duration"] == 2764800
    st, _, body = get(vault, "kv/none")
    assert_error(st, body, 404, [])


def test_token_required_everywhere_but_login_and_health(vault):
    vault.kv2_put("t", {"k": "v"})
    for path in ("secret/data/t", "secret/metadata/t", "kv/x", "auth/token/lookup-self",
                 "database/creds/app"):
        st, _, body = call(vault, "GET", path)
        assert_error(st, body, 403, ["permission denied"])
        st, _, body = call(vault, "GET", path, token="not-a-token")
        assert_error(st, body, 403, ["permission denied"])
    for path in ("auth/token/renew-self", "auth/token/revoke-self", "sys/leases/renew",
                 "sys/leases/revoke"):
        st, _, body = call(vault, "POST", path, {})
        assert_error(st, body, 403, ["permission denied"])
    # Authorization: Bearer works like X-Vault-Token
    st, _, body = call(vault, "GET", "secret/data/t",
                       headers={"Authorization": f"Bearer {vault.root_token}"})
    assert st == 200
    assert vault.requests("secret/data/t")[-1]["token_header"] == "Authorization"


def test_approle_login_matches_sample(vault):
    body = approle_login(vault)
    want = sample("approle-login.response")
    assert set(body) == ENVELOPE and set(want) <= set(body)
    assert set(want["auth"]) <= set(body["auth"])
    assert_same_keys(body["auth"], sample("token-create.response")["auth"], "auth")
    assert body["lease_duration"] == 0 and body["lease_id"] == "" and body["data"] is None
    assert body["auth"]["lease_duration"] == 1200 and body["auth"]["renewable"] is True
    tok = body["auth"]["client_token"]
    st, _, _ = get(vault, "auth/token/lookup-self", token=tok)
    assert st == 200
    st, _, body = call(vault, "POST", "auth/approle/login",
                       {"role_id": vault.approle_role_id, "secret_id": "wrong"})
    assert st == 400 and set(body) == {"errors"}


def test_jwt_login_checks_signature_exp_aud(vault):
    jwt = vault.jwt(vault.jwt_role)
    st, _, body = call(vault, "POST", "auth/jwt/login", {"role": vault.jwt_role, "jwt": jwt})
    assert st == 200, body
    assert set(body) == ENVELOPE
    assert set(sample("jwt-login.response")["auth"]) <= set(body["auth"])
    assert_same_keys(body["auth"], sample("token-create.response")["auth"], "auth")
    bad = {
        "expired": vault.jwt(vault.jwt_role, exp=-10),
        "no exp": vault.jwt(vault.jwt_role, exp=None),
        "wrong aud": vault.jwt(vault.jwt_role, aud="https://elsewhere.test"),
        "wrong key": vault.jwt(vault.jwt_role, key=b"another key entirely"),
        "garbage": "not.a.jwt",
    }
    for why, token in bad.items():
        st, _, body = call(vault, "POST", "auth/jwt/login", {"role": vault.jwt_role, "jwt": token})
        assert st == 400, why
        assert set(body) == {"errors"} and body["errors"], why
    st, _, body = call(vault, "POST", "auth/jwt/login", {"role": "nope", "jwt": jwt})
    assert st == 400
    # aud as a list containing the bound audience is accepted
    ok = vault.jwt(vault.jwt_role, aud=["x", vault.jwt_audience])
    st, _, _ = call(vault, "POST", "auth/jwt/login", {"role": vault.jwt_role, "jwt": ok})
    assert st == 200
    # the log never holds the JWT
    logged = vault.requests("auth/jwt/login")
    assert logged and all(e["body"]["jwt"] == REDACTED for e in logged)
    assert jwt not in json.dumps(vault.log)


def test_token_lookup_renew_revoke_self(vault):
    tok = approle_login(vault)["auth"]["client_token"]
    st, _, body = get(vault, "auth/token/lookup-self", token=tok)
    assert st == 200 and set(body) == ENVELOPE
    # the doc sample has no "type"; vault/token_store.go handleLookup sends it (the source
    # wins): service or batch
    want = dict(sample("token-lookup-self.response")["data"], type="service")
    assert_same_keys(body["data"], want, "data")
    assert body["data"]["display_name"] and body["data"]["entity_id"]
    assert 1190 <= body["data"]["ttl"] <= 1200
    st, _, body = post(vault, "auth/token/renew-self", sample("token-renew-self.request"),
                       token=tok)
    assert st == 200 and set(body) == ENVELOPE
    assert set(sample("token-renew-self.response")["auth"]) <= set(body["auth"])
    assert body["auth"]["lease_duration"] == 3600
    st, _, body = post(vault, "auth/token/renew-self", {"increment": "30s"}, token=tok)
    assert body["auth"]["lease_duration"] == 30
    assert vault.token_info(tok).renewals == 2
    st, _, body = post(vault, "auth/token/revoke-self", token=tok)
    assert st == 204 and body is None
    st, _, body = get(vault, "auth/token/lookup-self", token=tok)
    assert_error(st, body, 403, ["permission denied"])
    assert vault.token_info(tok).revoked


def test_token_expires(vault):
    tok = vault.create_token(ttl=1)
    assert get(vault, "auth/token/lookup-self", token=tok)[0] == 200
    time.sleep(1.2)
    assert get(vault, "auth/token/lookup-self", token=tok)[0] == 403


def test_database_creds_leases_renew_revoke(vault):
    st, _, body = get(vault, "database/creds/app")
    assert st == 200 and set(body) == ENVELOPE
    assert_same_keys(body["data"], sample("database-creds.response")["data"], "data")
    assert body["lease_id"].startswith("database/creds/app/")
    assert body["lease_duration"] == 3 and body["renewable"] is True
    lease_id = body["lease_id"]
    st2, _, body2 = get(vault, "database/creds/app")
    assert body2["data"]["password"] != body["data"]["password"]
    assert body2["lease_id"] != lease_id
    st, _, body = post(vault, "sys/leases/renew", {"lease_id": lease_id, "increment": 5})
    assert st == 200 and set(body) == ENVELOPE
    assert set(sample("lease-renew.response")) <= set(body)
    assert body["lease_id"] == lease_id and body["lease_duration"] == 5
    st, _, body = post(vault, "sys/leases/renew", {"lease_id": lease_id, "increment": 3600})
    assert st == 200 and 28 <= body["lease_duration"] <= 30      # capped by max_ttl 30
    st, _, body = post(vault, "sys/leases/revoke", {"lease_id": lease_id})
    assert st == 204 and body is None
    assert vault.lease(lease_id).revoked
    st, _, body = post(vault, "sys/leases/renew", {"lease_id": lease_id, "increment": 5})
    assert st == 400 and set(body) == {"errors"} and body["errors"]
    st, _, body = get(vault, "database/creds/unknown")
    assert st == 400 and set(body) == {"errors"}


def test_lease_expires(vault):
    vault.add_db_role("short", ttl=1, max_ttl=5)
    _, _, body = get(vault, "database/creds/short")
    time.sleep(1.2)
    st, _, body = post(vault, "sys/leases/renew", {"lease_id": body["lease_id"]})
    assert st == 400 and body["errors"]


def test_revoke_self_cascades_to_leases(vault):
    tok = approle_login(vault)["auth"]["client_token"]
    ids = [get(vault, "database/creds/app", token=tok)[2]["lease_id"] for _ in range(2)]
    other = get(vault, "database/creds/app")[2]["lease_id"]      # root's lease
    assert all(vault.lease(i).active for i in ids)
    assert post(vault, "auth/token/revoke-self", token=tok)[0] == 204
    assert all(vault.lease(i).revoked for i in ids)
    assert vault.lease(other).active
    st, _, body = post(vault, "sys/leases/renew", {"lease_id": ids[0]})
    assert st == 400


# ---------------------------------------------------------------- request log, namespace

def test_request_log_records_headers_and_redacts(vault):
    vault.clear_log()
    call(vault, "POST", "auth/approle/login",
         {"role_id": vault.approle_role_id, "secret_id": vault.approle_secret_id},
         headers={"X-Vault-Request": "true", "X-Vault-Namespace": "root"})
    post(vault, "secret/data/r", {"data": {"password": "hunter2-generated"}})
    get(vault, "secret/data/r?version=1")
    log = vault.log
    assert [e["path"] for e in log] == ["/v1/auth/approle/login", "/v1/secret/data/r",
                                        "/v1/secret/data/r"]
    login = log[0]
    assert login["method"] == "POST" and login["token"] is False
    assert login["vault_request"] == "true" and login["namespace"] == "root"
    assert login["body"]["secret_id"] == REDACTED
    assert login["body"]["role_id"] == vault.approle_role_id
    assert login["status"] == 200
    assert log[1]["token"] is True and log[1]["body"]["data"] == {"password": REDACTED}
    assert log[2]["query"] == {"version": "1"}
    assert "hunter2-generated" not in json.dumps(log)
    assert vault.approle_secret_id not in json.dumps(log)
    assert vault.root_token not in json.dumps(log)


def test_required_namespace(vault_factory):
    v = vault_factory(namespace="team")
    v.kv2_put("n", {"k": "v"})
    # the mounts are in namespace team: the root namespace has no secret/ mount
    # (vault/namespace_store.go resolves the namespace before the mount)
    st, _, body = get(v, "secret/data/n")
    assert st == 404 and set(body) == {"errors"}
    st, _, body = call(v, "POST", "auth/approle/login",
                       {"role_id": v.approle_role_id, "secret_id": v.approle_secret_id})
    assert st == 404 and set(body) == {"errors"}
    st, _, body = get(v, "secret/data/n", headers={"X-Vault-Namespace": "team/"})
    assert st == 200
    st, _, body = get(v, "team/secret/data/n")      # the namespace in the path is the same
    assert st == 200 and body["data"]["data"] == {"k": "v"}
    st, _, body = get(v, "sys/internal/ui/mounts/team/secret/data/n")
    assert st == 200 and body["data"]["path"] == "team/secret/"
    st, _, body = get(v, "sys/internal/ui/mounts/secret/data/n", headers={"X-Vault-Namespace": "team"})
    assert st == 200 and body["data"]["path"] == "secret/"
    assert get(v, "secret/data/n", headers={"X-Vault-Namespace": "nope"})[0] == 404
    assert call(v, "GET", "sys/health")[0] == 200


def test_plain_http(vault_factory):
    v = vault_factory(tls=False)
    assert v.addr.startswith("http://127.0.0.1:") and v.ca_path is None
    v.kv2_put("h", {"k": "v"})
    st, _, body = get(v, "secret/data/h")
    assert st == 200 and body["data"]["data"] == {"k": "v"}


def test_tls_cert_is_for_ip_and_localhost(vault):
    ctx = ssl.create_default_context(cafile=vault.ca_path)
    for host in ("127.0.0.1", "localhost"):
        with socket.create_connection(("127.0.0.1", vault.port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=host) as tls:
                assert tls.version()
    with pytest.raises(urllib.error.URLError) as e:
        call(vault, "GET", "sys/health", ca=vault.wrong_ca_path)
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError)


# ---------------------------------------------------------------- fault switches

def test_fault_latency(vault):
    f = vault.fault("latency", ms=300, count=1)
    t0 = time.monotonic()
    assert call(vault, "GET", "sys/health")[0] == 200
    assert time.monotonic() - t0 >= 0.3
    t0 = time.monotonic()
    call(vault, "GET", "sys/health")
    assert time.monotonic() - t0 < 0.3
    assert f.hits == 1


def test_fault_429_for_next_n(vault):
    vault.kv2_put("f", {"k": "v"})
    vault.fault("429", count=2)
    for _ in range(2):
        st, hdrs, body = get(vault, "secret/data/f")
        assert_error(st, body, 429, ['request path "secret/data/f": rate limit quota exceeded'])
        assert hdrs["Retry-After"] == "1"
    assert get(vault, "secret/data/f")[0] == 200
    assert [e["fault"] for e in vault.requests("secret/data/f")] == ["429", "429", None]


def test_fault_500_and_503_by_prefix(vault):
    vault.kv2_put("f", {"k": "v"})
    vault.fault("500", prefix="secret/")
    vault.fault("503", prefix="/v1/database/")
    st, _, body = get(vault, "secret/data/f")
    assert_error(st, body, 500)
    st, _, body = get(vault, "database/creds/app")
    assert_error(st, body, 503, ["Vault is sealed"])
    assert get(vault, "auth/token/lookup-self")[0] == 200      # other prefixes unaffected
    vault.clear_faults()
    assert get(vault, "secret/data/f")[0] == 200


def test_fault_badjson(vault):
    vault.fault("badjson", count=1)
    st, hdrs, payload = call(vault, "GET", "sys/health", raw=True)
    assert st == 200 and hdrs["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(payload)


def test_fault_truncated(vault):
    vault.fault("truncated", count=1)
    with pytest.raises(http.client.IncompleteRead):
        call(vault, "GET", "sys/health", raw=True)
    assert call(vault, "GET", "sys/health")[0] == 200


def test_fault_close(vault):
    vault.fault("close", count=1)
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        call(vault, "GET", "sys/health")
    assert call(vault, "GET", "sys/health")[0] == 200


def test_fault_wrong_ca(vault):
    vault.fault("wrong_ca", count=1)
    with pytest.raises(urllib.error.URLError) as e:
        call(vault, "GET", "sys/health")
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError)
    assert call(vault, "GET", "sys/health")[0] == 200
    vault.fault("wrong_ca", count=1)
    assert call(vault, "GET", "sys/health", ca=vault.wrong_ca_path)[0] == 200
    assert vault.connections["wrong_ca"] == 2
    assert len(vault.requests("sys/health")) == 2          # the failed handshake sent none


def test_connection_refused(vault):
    assert call(vault, "GET", "sys/health")[0] == 200
    vault.refuse_connections()
    with pytest.raises(urllib.error.URLError) as e:
        call(vault, "GET", "sys/health")
    assert isinstance(e.value.reason, ConnectionRefusedError)
    vault.accept_connections()
    assert call(vault, "GET", "sys/health")[0] == 200


def test_keep_alive_and_refuse_drops_open_connections(vault):
    ctx = ssl.create_default_context(cafile=vault.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", vault.port, context=ctx, timeout=5)
    for _ in range(3):                                   # one connection, three requests
        conn.request("GET", "/v1/sys/health")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["sealed"] is False
    assert vault.connections["accepted"] == 1
    vault.refuse_connections()
    with pytest.raises((http.client.HTTPException, ConnectionError, ssl.SSLError)):
        conn.request("GET", "/v1/sys/health")
        conn.getresponse()
    conn.close()
    vault.accept_connections()
    assert call(vault, "GET", "sys/health")[0] == 200


def test_make_jwt_roundtrip_is_hs256(vault):
    token = make_jwt(b"k", {"a": 1})
    header = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}


def test_concurrent_requests_with_latency_overlap(vault):
    """100 requests at once with 20 ms latency each take far less than 100 x 20 ms (the
    bench relies on the double serving clients in parallel)."""
    from concurrent.futures import ThreadPoolExecutor
    for i in range(100):
        vault.kv2_put(f"bench/{i}", {"v": str(i)})
    vault.fault("latency", ms=20)
    t0 = time.monotonic()
    with ThreadPoolExecutor(100) as pool:
        statuses = list(pool.map(lambda i: get(vault, f"secret/data/bench/{i}")[0], range(100)))
    elapsed = time.monotonic() - t0
    assert statuses == [200] * 100
    assert elapsed < 1.5, elapsed


def test_secret_values_for_leak_checks(vault):
    vault.kv2_put("s", {"k": "kv2-value-generated-0001", "short": "x"})
    vault.kv1_put("s", {"k": "kv1-value-generated-0002", "ttl": "1h"})
    tok = approle_login(vault)["auth"]["client_token"]
    pw = get(vault, "database/creds/app")[2]["data"]["password"]
    values = vault.secret_values()
    for v in (vault.root_token, vault.approle_secret_id, tok, pw,
              "kv2-value-generated-0001", "kv1-value-generated-0002"):
        assert v in values
    assert "x" not in values and "1h" not in values


# ---- what the double does as Vault's source does (each behaviour's source is named where
# the double implements it, in vault_server.py) ----

def test_mount_table_nested_mounts_and_ui_mounts(vault):
    with pytest.raises(ValueError, match="already in use"):
        vault.add_kv2_mount("kv/team")          # under kv/ (vault/mount.go)
    vault.add_kv2_mount("team/apps")
    vault.kv2_put("app", {"k": "v2"}, mount="team/apps")
    vault.kv1_put("data/x", {"k": "v1"})       # a KV v1 key under a folder named data/
    st, _, body = get(vault, "team/apps/data/app")
    assert st == 200 and body["data"]["data"] == {"k": "v2"}
    st, _, body = get(vault, "kv/data/x")
    assert st == 200 and body["data"] == {"k": "v1"}
    st, _, body = get(vault, "sys/internal/ui/mounts/team/apps/data/app")
    assert st == 200 and body["data"]["path"] == "team/apps/" and body["data"]["options"] == {"version": "2"}
    assert body["data"]["type"] == "kv"
    st, _, body = get(vault, "sys/internal/ui/mounts/kv/data/x")
    assert st == 200 and body["data"]["path"] == "kv/" and body["data"]["options"] == {"version": "1"}
    st, _, body = get(vault, "sys/internal/ui/mounts/nothing/here")
    assert_error(st, body, 403)
    vault.server.ui_mounts = "denied"
    assert get(vault, "sys/internal/ui/mounts/kv/data/x")[0] == 403


def test_kv2_wrong_path_is_404_with_a_warning(vault):
    vault.kv2_put("app", {"k": "v"})
    st, _, body = get(vault, "secret/app")
    assert st == 404 and body["data"] is None and "Invalid path for a versioned K/V" in body["warnings"][0]
    vault.add_warning("secret/data/", "a warning on success")
    st, _, body = get(vault, "secret/data/app")
    assert st == 200 and body["warnings"] == ["a warning on success"]


def test_batch_tokens_and_num_uses(vault):
    tok = vault.create_token(token_type="batch")
    assert tok.startswith("hvb.")
    st, _, body = get(vault, "auth/token/lookup-self", token=tok)
    assert body["data"]["type"] == "batch" and body["data"]["renewable"] is False
    st, _, body = post(vault, "auth/token/renew-self", token=tok)
    assert_error(st, body, 400, ["batch tokens cannot be renewed"])
    st, _, body = post(vault, "auth/token/revoke-self", token=tok)
    assert_error(st, body, 400, ["batch tokens cannot be revoked"])
    limited = vault.create_token(num_uses=2)
    vault.kv2_put("u", {"k": "v"})
    assert get(vault, "sys/internal/ui/mounts/secret/data/u", token=limited)[0] == 200   # no use spent
    st, _, body = get(vault, "auth/token/lookup-self", token=limited)
    assert body["data"]["num_uses"] == 1
    assert get(vault, "secret/data/u", token=limited)[0] == 200      # the last use works ...
    assert vault.token_info(limited).revoked                          # ... and revokes it
    assert get(vault, "secret/data/u", token=limited)[0] == 403


def test_default_policy_cannot_revoke_leases(vault):
    tok = vault.create_token(policies=("default",))
    st, _, body = get(vault, "database/creds/app", token=tok)
    lease = body["lease_id"]
    st, _, body = post(vault, "sys/leases/revoke", {"lease_id": lease}, token=tok)
    assert_error(st, body, 403, ["permission denied"])
    assert post(vault, "sys/leases/renew", {"lease_id": lease}, token=tok)[0] == 200
    assert post(vault, "auth/token/revoke-self", token=tok)[0] == 204
    assert vault.lease(lease).revoked, "revoke-self revokes the token's leases"


def test_redirect_412_504_and_sealed(vault_factory):
    active, standby = vault_factory(), vault_factory()
    active.kv2_put("r", {"k": "v"})
    standby.server.redirect_to = active.addr
    standby.fault("307", count=1)
    conn = http.client.HTTPSConnection("127.0.0.1", standby.port,
                                       context=ssl.create_default_context(cafile=standby.ca_path))
    conn.request("GET", "/v1/secret/data/r", headers={"X-Vault-Token": active.root_token})
    r = conn.getresponse()
    assert r.status == 307 and r.getheader("Location") == f"{active.addr}/v1/secret/data/r"
    assert r.read() == b""
    conn.close()
    for kind, code in (("412", 412), ("504", 504)):
        active.fault(kind, count=1)
        assert get(active, "secret/data/r", raw=True)[0] == code
    active.server.health["sealed"] = True
    st, _, body = get(active, "secret/data/r")
    assert_error(st, body, 503, ["Vault is sealed"])
    assert call(active, "GET", "sys/health")[0] == 503


def test_kubernetes_cert_and_pki(vault, tmp_path):
    vault.add_k8s_role("ci", service_accounts=["runner"], namespaces=["ci"])
    st, _, body = call(vault, "POST", "auth/kubernetes/login",
                       {"role": "ci", "jwt": vault.k8s_token("runner", "ci")})
    assert st == 200 and body["auth"]["metadata"]["service_account_name"] == "runner"
    st, _, body = call(vault, "POST", "auth/kubernetes/login",
                       {"role": "ci", "jwt": vault.k8s_token("other", "ci")})
    assert_error(st, body, 403, ["service account name not authorized"])
    st, _, body = call(vault, "POST", "auth/cert/login", {})
    assert st == 404, "no cert mount until a cert role is added"
    vault.add_pki_role("web", directory=tmp_path / "pki")
    st, _, body = post(vault, "pki/issue/web", {"common_name": "test.example", "ttl": "10m"})
    assert st == 200 and body["lease_id"] == ""
    assert body["data"]["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in body["data"]["private_key"]
    vault.add_pki_role("leased", directory=tmp_path / "pki", generate_lease=True)
    st, _, body = post(vault, "pki/issue/leased", {"common_name": "test.example"})
    assert st == 200 and body["lease_id"].startswith("pki/issue/leased/") and body["renewable"] is False
    st, _, body = post(vault, "pki/issue/web", {})
    assert st == 400
