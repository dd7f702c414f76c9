"""A Vault **test double** for the integration tests: it is not Vault.

It answers the endpoints listed in /work/shared/vault-api/README.md (copied from HashiCorp's
published docs) with responses shaped like the JSON samples there: every success carries the
full envelope (request_id, lease_id, renewable, lease_duration, data, wrap_info, warnings, auth,
mount_type) and every error is {"errors": [...]}. Behaviour the docs leave open follows the
README's [src] notes (KV v2 soft-deleted/destroyed reads are 404 with a data-null envelope, a
missing key is 404 {"errors": []}, CAS errors are 400 with Vault's texts).

Where the real server is less kind than those docs, the double follows Vault's and OpenBao's
source, each behaviour with a comment naming the file (openbao/openbao paths unless marked
hashicorp/): mounts of several segments, KV v2 and v1 told apart by the mount table and
answered by sys/internal/ui/mounts/<path>; namespaces in the path and in X-Vault-Namespace;
batch tokens; num_uses; Vault's default policy (no sys/leases/revoke); warnings; 307 from a
standby, 412, 504 and a sealed server. Where ../shared/vault-api/ says otherwise the source
wins, and the comment says so. Anything else (full ACL policies, wrapping, quotas, ...) is not
modelled: every valid token may read every path.

The behaviours that follow the source, and where (each is commented where it is done):

| behaviour | source |
|---|---|
| mount table, mounts of several segments, no mount under another | vault/mount.go, vault/routing/router.go |
| sys/internal/ui/mounts/<path>: mount info + path, 403 alike for no mount and no access, no token use spent | vault/logical_system.go (pathInternalUIMountRead), command/kv_helpers.go |
| namespaces: header stacked ahead of the path, longest prefix | vault/namespace_store.go (ResolveNamespaceFromRequest) |
| KV v2 path outside data/ and metadata/: 404 with a warning | vault-plugin-secrets-kv backend.go (openbao builtin/logical/kv/backend.go pathInvalid) |
| batch tokens: hvb. prefix, not renewable, renew/revoke-self 400 | vault/token_store.go |
| num_uses: every authenticated request spends one, revoked after the last | vault/request_handling.go, vault/token_store.go (UseToken) |
| default policy: no sys/leases/revoke (403), revoke-self allowed | vault/policy/policy_store.go (DefaultPolicy) |
| revoke-self revokes the token's leases (lazily, in Vault) | vault/expiration.go (RevokeByToken) |
| 307 from a standby to the active node | http/handler.go (respondStandby) |
| 412 "required index state not present" | hashicorp/vault sdk/logical/error.go (ErrMissingRequiredState) |
| 504 (a gateway's, not Vault's) | none in Vault: go-retryablehttp retries every 5xx but 501 |
| sealed: 503 "Vault is sealed" to everything but sys/health | vault/request_handling.go, sdk/helper/consts/error.go |
| kubernetes login | builtin/credential/kubernetes/path_login.go |
| cert login | builtin/credential/cert/path_login.go |
| PKI issue (lease only with generate_lease), revoke by serial | builtin/logical/pki/path_issue_sign.go, path_roles.go, path_revoke.go |
| a Vault Agent's unix listener adding its auto-auth token | command/agentproxyshared/cache/handler.go |

Where ../shared/vault-api/ and the source disagree, the source wins:
- lookup-self's data has "type" (token_store.go handleLookup); the doc sample has none.
- a namespace header naming no namespace is 404 (namespace_store.go resolves the namespace
  before anything else); the double used to answer 403 for a missing header.
- revoke of a lease by a default-policy token is 403 (policy_store.go), as the README's 6b
  says, though no sample shows it.

Python stdlib only: http.server.ThreadingHTTPServer on 127.0.0.1 (random port), TLS through
ssl with a certificate the caller provides (make_test_pki() creates a throwaway CA and a server
certificate for 127.0.0.1/localhost with openssl), or plain HTTP.

State is in memory: tokens (root + logins), KV v1/v2 mounts, AppRole/JWT roles, database roles
and leases, a request log (secret-ish body fields redacted) and fault switches.
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import socket
import ssl
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

ENVELOPE_KEYS = ("request_id", "lease_id", "renewable", "lease_duration", "data",
                 "wrap_info", "warnings", "auth", "mount_type")
FAULT_KINDS = ("latency", "429", "500", "503", "badjson", "truncated", "close", "wrong_ca",
               "412", "504", "307")
REDACTED = "<redacted>"
_SECRET_KEYS = {"jwt", "secret_id", "password", "token", "client_token"}
_DEFAULT_KV1_TTL = 2764800   # what Vault's KV v1 reports when the data has no "ttl" key


# ---------------------------------------------------------------- helpers

def rfc3339(t):
    """Epoch seconds -> '2018-03-22T02:24:06.945319Z' (UTC, as Vault writes it)."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_duration(value, default=None):
    """Vault durations: an int (seconds) or '90', '30s', '5m', '1h', '1h30m'. None -> default."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValueError("bad duration")
    if isinstance(value, (int, float)):
        return int(value)
    s = str(value).strip()
    if s.isdigit():
        return int(s)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", s)
    if not parts or not any(parts.groups()):
        raise ValueError(f"bad duration {value!r}")
    h, m, sec = (int(x or 0) for x in parts.groups())
    return h * 3600 + m * 60 + sec


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(key, claims, alg="HS256"):
    """An HS256 JWT over claims signed with key (bytes)."""
    header = _b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"


def redact(body, kv_write=False):
    """A copy of a request body with secret-ish values replaced by '<redacted>': the jwt,
    secret_id, password, token fields anywhere, and (kv_write) every value under 'data'."""
    def walk(obj, key=None):
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if k in _SECRET_KEYS and v is not None:
                    out[k] = REDACTED
                elif kv_write and k == "data" and obj is body and isinstance(v, dict):
                    out[k] = {dk: REDACTED for dk in v}
                else:
                    out[k] = walk(v, k)
            return out
        if isinstance(obj, list):
            return [walk(v, key) for v in obj]
        return obj
    return walk(body)


def _run_openssl(args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {r.stderr[-1000:]}")


def make_test_pki(directory, name="test"):
    """Creates in directory a throwaway EC CA (<name>-ca.pem) and a server certificate for
    127.0.0.1 and localhost signed by it (<name>-server.pem / .key). Returns (ca, cert, key)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca, ca_key = d / f"{name}-ca.pem", d / f"{name}-ca.key"
    cert, key, csr = d / f"{name}-server.pem", d / f"{name}-server.key", d / f"{name}.csr"
    ext = d / f"{name}-ext.cnf"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run_openssl(["req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
                  "-subj", f"/CN=secrets-run {name} CA (throwaway)",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                  "-addext", "subjectKeyIdentifier=hash"], d)
    _run_openssl(["req", "-new", *ec, "-keyout", str(key), "-out", str(csr),
                  "-subj", "/CN=127.0.0.1"], d)
    ext.write_text("basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n"
                   "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "subjectKeyIdentifier=hash\n"
                   "authorityKeyIdentifier=keyid\n")
    _run_openssl(["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                  "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)], d)
    for p in (ca_key, key):
        p.chmod(0o600)
    return ca, cert, key


class VaultError(Exception):
    def __init__(self, status, errors=(), headers=None, body=True):
        super().__init__(status)
        self.status, self.errors, self.headers = status, list(errors), headers or {}
        self.body = body    # False: no body at all (a redirect)


class Fault:
    """One fault switch. kind in FAULT_KINDS; count = how many more requests (connections for
    wrong_ca) it applies to (None = until removed); prefix = request path prefix it applies to
    ('/v1/...' or without /v1/); ms = added latency for 'latency'. hits counts applications."""

    def __init__(self, kind, count=None, prefix=None, ms=0, retry_after="1"):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        if prefix and not prefix.startswith("/v1/"):
            prefix = "/v1/" + prefix.lstrip("/")
        self.kind, self.count, self.prefix, self.ms = kind, count, prefix, ms
        self.retry_after = retry_after    # 429: the header's value (seconds or an HTTP date)
        self.hits = 0

    def matches(self, path):
        return self.count != 0 and (self.prefix is None or path.startswith(self.prefix))

    def __repr__(self):
        return f"Fault({self.kind!r}, count={self.count}, prefix={self.prefix!r}, hits={self.hits})"


class Token:
    def __init__(self, token_id, ttl, renewable=True, policies=("default",), path="",
                 display_name="token", meta=None, max_ttl=None, orphan=True, token_type="service",
                 num_uses=0):
        now = time.time()
        self.id = token_id
        # vault/token_store.go: a batch token is never renewable (and cannot be renewed or
        # revoked, see _renew_self and revoke-self); num_uses 0 = unlimited
        self.type = token_type
        self.num_uses = num_uses
        if token_type == "batch":
            renewable = False
        self.accessor = secrets.token_urlsafe(18)
        self.policies = list(policies)
        self.creation_ttl = ttl
        self.renewable = renewable and ttl > 0
        self.path = path
        self.display_name = display_name
        self.meta = meta
        self.entity_id = str(uuid.uuid4()) if ttl > 0 else ""
        self.created = now
        self.expire = now + ttl if ttl > 0 else None
        self.max_expire = now + max_ttl if max_ttl else None
        self.orphan = orphan
        self.revoked = False
        self.renewals = 0

    @property
    def valid(self):
        return not self.revoked and (self.expire is None or time.time() < self.expire)

    def remaining(self):
        return 0 if self.expire is None else max(0, int(round(self.expire - time.time())))


class Lease:
    def __init__(self, lease_id, token, ttl, max_ttl, renewable=True):
        now = time.time()
        self.id, self.token, self.renewable = lease_id, token, renewable
        self.created, self.expire, self.max_expire = now, now + ttl, now + max_ttl
        self.revoked = False
        self.renewals = 0
        self.username = self.password = None
        self.conf = None

    @property
    def active(self):
        return not self.revoked and time.time() < self.expire


# ---------------------------------------------------------------- server

class VaultServer:
    """The test double. start() binds 127.0.0.1 on a random port; .addr is the base URL.

    tls: (cert, key) paths to serve HTTPS, or None for plain HTTP; wrong_tls: another
    (cert, key) served to connections while a 'wrong_ca' fault is active. namespace: if set,
    the default mounts (secret/, kv/, database/, auth/approle, auth/jwt) live in that
    namespace instead of the root one, as on HCP Vault (namespace "admin"): a request reaches
    them only with X-Vault-Namespace (or the namespace in its path); without, the root
    namespace has no such mount (404, login 404). Seeding helpers take namespace=None for
    that default namespace."""

    def __init__(self, root_token, tls=None, wrong_tls=None, namespace=None, jwt_key=None):
        self.root_token = root_token
        self.namespace = namespace.strip("/") if namespace else ""
        self.jwt_key = jwt_key or secrets.token_bytes(32)
        self.lock = threading.RLock()
        self.tokens = {}
        # Namespaces by path ("" is root). vault/namespace_store.go: the header is stacked
        # ahead of the request path and the longest namespace prefix wins.
        self.namespaces = {""}
        if self.namespace:
            self.namespaces.add(self.namespace)
        # The mount table: full path (namespace + mount, no trailing "/") -> entry. Mounts
        # of several segments ("kv/team") are ordinary; within one namespace no mount may
        # be under another (vault/mount.go: "path is already in use at").
        self.mounts = {}
        self.kv2 = {}               # full mount -> {cas_required, paths}
        self.kv1 = {}               # full mount -> {path: data}
        self.auth_mounts = {}       # full mount (without auth/) -> type
        self.approle_roles = {}     # mount -> {role_id: role dict}
        self.approle_race = set()   # (mount, secret_id) whose next login loses its last use
        self.jwt_roles = {}         # mount -> {role name: role dict}
        self.k8s_roles = {}         # mount -> {role name: role dict}
        self.cert_roles = {}        # mount -> {name: {ca: PEM path, ...}}
        self.db_roles = {}          # (mount, role) -> {ttl, max_ttl}
        self.db_mounts = set()
        self.pki = {}               # full mount -> {ca, ca_key, roles}
        # ACL: only what the client's behaviour depends on is modelled. policy name -> the
        # paths beyond the default policy it grants ("*" = all, as root).
        self.policies = {"root": {"*"}, "default": set()}
        self.ui_mounts = "allowed"  # | "denied" (403, as without access) | "absent" (404, old Vault)
        self.warnings = []          # (path prefix, text): extra warnings on 2xx answers
        self.redirect_to = None     # the 307 fault's target: the active node's address
        self._add_mount("secret", "kv", version=2)
        self._add_mount("kv", "kv", version=1)
        self._add_mount("database", "database")
        self._add_mount("approle", "approle", table="auth")
        self._add_mount("jwt", "jwt", table="auth")
        self.leases = {}
        self.pki_certs = {}         # serial -> {lease_id, revoked}
        self.log = []
        self.faults = []
        self.health = {"sealed": False, "standby": False}
        self._ctx = self._wrong_ctx = None
        if tls:
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(*map(str, tls))
        if wrong_tls:
            self._wrong_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._wrong_ctx.load_cert_chain(*map(str, wrong_tls))
        root = Token(root_token, 0, renewable=False, policies=("root",), path="auth/token/root",
                     display_name="root")
        self.tokens[root_token] = root
        self.cluster_id = str(uuid.uuid4())
        self.connections = {"accepted": 0, "wrong_ca": 0, "handshake_failed": 0}
        self._open = set()
        self.port = 0
        self._httpd = None
        self._thread = None

    # ---- lifecycle ----

    @property
    def scheme(self):
        return "https" if self._ctx else "http"

    @property
    def addr(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self):
        server = self

        class Httpd(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256    # concurrent clients (bench: 100 at once) must not
                                        # overflow the listen backlog (default 5)

            def finish_request(self, request, client_address):
                # Runs in the per-connection thread: the TLS handshake happens here.
                with server.lock:
                    server.connections["accepted"] += 1
                    server._open.add(request)
                try:
                    if server._ctx is not None:
                        ctx = server._ctx
                        f = server._take_fault(None, ("wrong_ca",))
                        if f is not None and server._wrong_ctx is not None:
                            ctx = server._wrong_ctx
                            with server.lock:
                                server.connections["wrong_ca"] += 1
                        raw = request
                        try:
                            request = ctx.wrap_socket(raw, server_side=True)
                            with server.lock:     # wrap_socket detached raw's descriptor
                                server._open.discard(raw)
                                server._open.add(request)
                        except (ssl.SSLError, OSError):
                            with server.lock:
                                server._open.discard(raw)
                            with server.lock:
                                server.connections["handshake_failed"] += 1
                            request.close()
                            return
                    Handler(request, client_address, self)
                finally:
                    with server.lock:
                        server._open.discard(request)

            def handle_error(self, request, client_address):
                pass    # a client that went away is not a test failure

        self._httpd = Httpd(("127.0.0.1", self.port), Handler)
        self._httpd.vault = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops listening and closes open (keep-alive) connections."""
        for httpd, t in getattr(self, "_unix", []):
            httpd.shutdown()
            httpd.server_close()
            t.join(5)
        self._unix = []
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None
        with self.lock:
            open_socks = list(self._open)
        for sock in open_socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve_unix(self, path, auto_auth_token=None):
        """Also serves on a unix socket at path, as a Vault Agent's or Proxy's listener
        does; with auto_auth_token, a request without a token gets that one, as the
        agent's api_proxy with use_auto_auth_token adds its own
        (command/agentproxyshared/cache/handler.go ProxyHandler)."""
        import socketserver
        server = self

        class UnixHttpd(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        httpd = UnixHttpd(str(path), Handler)
        httpd.vault = self
        httpd.auto_auth_token = auto_auth_token
        t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        t.start()
        self._unix = getattr(self, "_unix", []) + [(httpd, t)]
        return httpd

    def refuse_connections(self):
        """Stops listening and drops open connections: connections to .addr are refused
        until accept_connections()."""
        self.stop()

    def accept_connections(self):
        """Listens again on the same port after refuse_connections()."""
        if self._httpd is None:
            self.start()

    # ---- fault switches ----

    def fault(self, kind, count=None, prefix=None, ms=0, retry_after="1"):
        """Adds a fault switch (see Fault); returns it (its .hits counts applications).
        Kinds: latency (ms), 429 (Retry-After: retry_after, rate-limit text), 500, 503 (Vault
        is sealed), 412 (a performance standby not yet replicated), 504 (a gateway timing
        out), 307 (a standby: redirect to .redirect_to),
        badjson (200 with an unparsable body), truncated (Content-Length larger than the
        body sent, then close), close (the connection closes without a response), wrong_ca
        (TLS connections get a certificate from another CA; counted per connection)."""
        if kind == "wrong_ca" and prefix is not None:
            raise ValueError("wrong_ca applies per connection, before any path is known")
        f = Fault(kind, count, prefix, ms, retry_after)
        with self.lock:
            self.faults.append(f)
        return f

    def clear_faults(self):
        with self.lock:
            self.faults.clear()

    def _take_fault(self, path, kinds):
        with self.lock:
            for f in self.faults:
                if f.kind in kinds and (path is None and f.prefix is None or
                                        path is not None and f.matches(path)) and f.count != 0:
                    if f.count is not None:
                        f.count -= 1
                    f.hits += 1
                    return f
        return None

    # ---- request log ----

    def requests(self, path=None, prefix=None, method=None):
        """Request log entries (dicts: method, path, query, token, token_header, accessor,
        namespace, vault_request, body (redacted), status, fault, time), optionally filtered
        by exact path or prefix ('/v1/...' or without /v1/) and method."""
        def norm(p):
            return p if p is None or p.startswith("/v1/") else "/v1/" + p.lstrip("/")
        path, prefix = norm(path), norm(prefix)
        with self.lock:
            entries = list(self.log)
        return [e for e in entries
                if (path is None or e["path"] == path)
                and (prefix is None or e["path"].startswith(prefix))
                and (method is None or e["method"] == method.upper())]

    def clear_log(self):
        with self.lock:
            self.log.clear()

    # ---- seeding: KV ----

    def _full(self, mount, namespace=None):
        """The mount table's key for mount in namespace (None: the server's default one)."""
        ns = self.namespace if namespace is None else namespace.strip("/")
        mount = mount.strip("/")
        return f"{ns}/{mount}" if ns else mount

    def _add_mount(self, mount, kind, version=None, table="secrets", namespace=None):
        full = self._full(mount, namespace)
        ns = self.namespace if namespace is None else namespace.strip("/")
        rel = full[len(ns) + 1:] if ns else full
        with self.lock:
            for other, e in self.mounts.items():
                # vault/mount.go (mountInternal): neither may be a prefix of the other
                if e["ns"] == ns and e["table"] == table and \
                        (f"{e['rel']}/".startswith(f"{rel}/") or f"{rel}/".startswith(f"{e['rel']}/")):
                    raise ValueError(f"path is already in use at {e['rel']}/")
            self.mounts[full] = {"type": kind, "version": version, "ns": ns, "rel": rel,
                                 "table": table, "uuid": str(uuid.uuid4()),
                                 "accessor": f"{kind}_{secrets.token_hex(4)}"}
            if kind == "kv" and version == 2:
                self.kv2[full] = {"cas_required": False, "paths": {}}
            elif kind == "kv":
                self.kv1[full] = {}
            elif kind == "database":
                self.db_mounts.add(full)
            elif table == "auth":
                self.auth_mounts[full] = kind
        return full

    def add_namespace(self, path):
        """A namespace (child of root, or nested: "ns1/team")."""
        with self.lock:
            self.namespaces.add(path.strip("/"))

    def add_kv2_mount(self, mount, cas_required=False, namespace=None):
        full = self._add_mount(mount, "kv", version=2, namespace=namespace)
        with self.lock:
            self.kv2[full]["cas_required"] = cas_required

    def add_kv1_mount(self, mount, namespace=None):
        self._add_mount(mount, "kv", version=1, namespace=namespace)

    def add_policy(self, name, paths):
        """A policy granting paths (beyond the default policy's) to tokens that carry it."""
        with self.lock:
            self.policies[name] = set(paths)

    def add_warning(self, prefix, text):
        """Every 2xx answer to a path under prefix carries text in its warnings."""
        if not prefix.startswith("/v1/"):
            prefix = "/v1/" + prefix.lstrip("/")
        with self.lock:
            self.warnings.append((prefix, text))

    def kv2_put(self, path, data, mount="secret", custom_metadata=None, namespace=None):
        """Writes a new version of mount/path; returns its version number."""
        with self.lock:
            return self._kv2_write(self._full(mount, namespace), path, dict(data),
                                   custom_metadata)["version"]

    def _kv2_write(self, mount, path, data, custom_metadata=None):
        paths = self.kv2[mount]["paths"]
        now = time.time()
        entry = paths.setdefault(path, {"versions": {}, "current": 0, "created": now,
                                        "updated": now, "custom_metadata": None})
        if custom_metadata is not None:
            entry["custom_metadata"] = dict(custom_metadata)
        entry["current"] += 1
        entry["updated"] = now
        v = {"data": data, "created": now, "deletion_time": "", "destroyed": False}
        entry["versions"][entry["current"]] = v
        return self._kv2_version_meta(entry, entry["current"])

    def _kv2_entry(self, mount, path):
        try:
            return self.kv2[self._full(mount)]["paths"][path]
        except KeyError:
            raise KeyError(f"no KV v2 secret {mount}/{path}") from None

    def _kv2_versions(self, entry, versions):
        if versions is None:
            versions = [entry["current"]]
        elif isinstance(versions, int):
            versions = [versions]
        return [entry["versions"][n] for n in versions]

    def kv2_delete(self, path, versions=None, mount="secret", when=None):
        """Soft-deletes versions (default: the latest): deletion_time = when (epoch, default now)."""
        with self.lock:
            for v in self._kv2_versions(self._kv2_entry(mount, path), versions):
                v["deletion_time"] = rfc3339(when if when is not None else time.time())

    def kv2_undelete(self, path, versions=None, mount="secret"):
        with self.lock:
            for v in self._kv2_versions(self._kv2_entry(mount, path), versions):
                v["deletion_time"] = ""

    def kv2_destroy(self, path, versions=None, mount="secret"):
        """Destroys versions (default: the latest): data gone, destroyed = true."""
        with self.lock:
            for v in self._kv2_versions(self._kv2_entry(mount, path), versions):
                v["destroyed"], v["data"] = True, None

    def kv2_set_created_time(self, path, version=None, when=None, mount="secret"):
        """Sets a version's created_time (default the latest) to when: epoch seconds, a
        datetime, or a negative number meaning that many seconds ago."""
        if isinstance(when, dt.datetime):
            when = when.timestamp()
        elif when is not None and when < 0:
            when = time.time() + when
        with self.lock:
            for v in self._kv2_versions(self._kv2_entry(mount, path), version):
                v["created"] = when

    def kv1_put(self, path, data, mount="kv", namespace=None):
        with self.lock:
            self.kv1[self._full(mount, namespace)][path] = dict(data)

    # ---- seeding: auth ----

    def create_token(self, ttl=3600, renewable=True, policies=("default",), max_ttl=None,
                     display_name="token", path="auth/token/create", token_type="service",
                     num_uses=0):
        """Issues a token directly (no login); returns the token string. A batch token's id
        starts "hvb." (vault/token_store.go: batch tokens are told by their prefix)."""
        prefix = "hvb." if token_type == "batch" else "hvs."
        tok = Token(prefix + secrets.token_urlsafe(24), ttl, renewable, policies, path,
                    display_name, max_ttl=max_ttl, token_type=token_type, num_uses=num_uses)
        with self.lock:
            self.tokens[tok.id] = tok
        return tok.id

    def token_info(self, token):
        """The Token object (accessor, revoked, expire, renewals, ...) for a token string."""
        with self.lock:
            return self.tokens.get(token)

    def tokens_issued(self):
        """Tokens created by logins or create_token (not the root token)."""
        with self.lock:
            return [t for t in self.tokens.values() if t.id != self.root_token]

    def _auth_mount(self, mount, kind, namespace):
        full = self._full(mount, namespace)
        with self.lock:
            if full not in self.auth_mounts:
                self._add_mount(mount, kind, table="auth", namespace=namespace)
        return full

    def add_approle(self, role_name, mount="approle", ttl=1200, max_ttl=None,
                    policies=("default",), role_id=None, secret_id=None, token_type="service",
                    token_num_uses=0, namespace=None):
        """Adds an AppRole role; returns (role_id, secret_id), generated unless given.
        token_type "batch" and token_num_uses as the role options of that name
        (builtin/credential/approle/path_role.go, sdk/helper/tokenutil)."""
        role_id = role_id or str(uuid.uuid4())
        secret_id = secret_id or secrets.token_urlsafe(24)
        mount = self._auth_mount(mount, "approle", namespace)
        with self.lock:
            self.approle_roles.setdefault(mount, {})[role_id] = {
                "name": role_name, "secret_ids": {secret_id}, "ttl": ttl, "max_ttl": max_ttl,
                "policies": list(policies), "token_type": token_type,
                "num_uses": token_num_uses}
        return role_id, secret_id

    def spend_secret_id_concurrently(self, secret_id, mount="approle"):
        """The next login with secret_id loses a race for its last use: another login spends it
        between the two reads of its entry, and Vault answers `invalid secret_id "<the secret
        id>"` (400), quoting the credential (path_login.go, pathLoginUpdate: the
        SecretIDNumUses branch re-reads the entry under the write lock and finds none;
        openbao internal/builtin/credential/approle/path_login.go)."""
        with self.lock:
            self.approle_race.add((mount, secret_id))

    def add_jwt_role(self, role, bound_audiences, mount="jwt", ttl=3600, max_ttl=None,
                     policies=("default",), bound_claims=None, namespace=None):
        """Adds a JWT auth role accepting HS256 tokens signed with .jwt_key whose aud matches
        one of bound_audiences and whose claims include bound_claims."""
        if isinstance(bound_audiences, str):
            bound_audiences = [bound_audiences]
        mount = self._auth_mount(mount, "jwt", namespace)
        with self.lock:
            self.jwt_roles.setdefault(mount, {})[role] = {
                "aud": list(bound_audiences), "ttl": ttl, "max_ttl": max_ttl,
                "policies": list(policies), "bound_claims": dict(bound_claims or {})}

    def jwt(self, role=None, aud=None, exp=300, key=None, **claims):
        """Mints an HS256 JWT signed with .jwt_key (or key). exp: absolute epoch seconds if
        > 10**9, else seconds from now (negative = already expired); None = no exp claim.
        aud defaults to the first bound audience of role; sub defaults to the role name."""
        now = int(time.time())
        if aud is None and role is not None:
            for roles in self.jwt_roles.values():
                if role in roles:
                    aud = roles[role]["aud"][0]
                    break
        body = {"iss": "https://ci.example.test", "sub": role or "ci", "iat": now, "nbf": now - 1}
        if aud is not None:
            body["aud"] = aud
        if exp is not None:
            body["exp"] = exp if exp > 10**9 else now + exp
        body.update(claims)
        return make_jwt(key or self.jwt_key, body)

    # ---- seeding: database ----

    def add_db_role(self, role, ttl=3, max_ttl=30, mount="database", renewable=True,
                    namespace=None):
        """A database role whose credentials have leases of ttl s, renewable (unless not)
        up to max_ttl s after issue."""
        full = self._full(mount, namespace)
        with self.lock:
            if full not in self.db_mounts:
                self._add_mount(mount, "database", namespace=namespace)
            mount = full
            self.db_roles[(mount, role)] = {"ttl": ttl, "max_ttl": max_ttl, "renewable": renewable}

    # ---- seeding: kubernetes and cert auth, PKI ----

    def add_k8s_role(self, role, service_accounts=("default",), namespaces=("ci",),
                     mount="kubernetes", ttl=600, max_ttl=None, policies=("default",),
                     namespace=None):
        """A kubernetes auth role binding service account names and namespaces ("*": any)."""
        mount = self._auth_mount(mount, "kubernetes", namespace)
        with self.lock:
            self.k8s_roles.setdefault(mount, {})[role] = {
                "names": list(service_accounts), "namespaces": list(namespaces), "ttl": ttl,
                "max_ttl": max_ttl, "policies": list(policies)}

    def k8s_token(self, name="default", k8s_namespace="ci", exp=600):
        """A service-account token as the kubelet projects it (claims under kubernetes.io),
        signed with .jwt_key (the double's stand-in for the TokenReview API)."""
        return self.jwt(aud="https://kubernetes.default.svc", exp=exp, sub=f"system:serviceaccount:{k8s_namespace}:{name}",
                        **{"kubernetes.io": {"namespace": k8s_namespace,
                                             "serviceaccount": {"name": name, "uid": str(uuid.uuid4())}}})

    def add_cert_role(self, name, ca_path, ca_cn, mount="cert", ttl=600, max_ttl=None,
                      policies=("default",), namespace=None):
        """A cert auth role trusting client certificates issued by the CA at ca_path (whose
        subject CN is ca_cn). The server asks TLS clients for a certificate signed by it."""
        mount = self._auth_mount(mount, "cert", namespace)
        with self.lock:
            self.cert_roles.setdefault(mount, {})[name] = {
                "ca_cn": ca_cn, "ttl": ttl, "max_ttl": max_ttl, "policies": list(policies)}
        if self._ctx is not None:
            self._ctx.verify_mode = ssl.CERT_OPTIONAL
            self._ctx.load_verify_locations(cafile=str(ca_path))

    def add_pki_role(self, role, mount="pki", directory=None, generate_lease=False,
                     max_ttl=3600, namespace=None):
        """A PKI mount (created with its own throwaway CA in directory) and a role issuing
        certificates for any common name. generate_lease as the role option: Vault's
        default is false (builtin/logical/pki/path_roles.go), and then an issued
        certificate has no lease."""
        full = self._full(mount, namespace)
        with self.lock:
            if full not in self.pki:
                self._add_mount(mount, "pki", namespace=namespace)
                d = Path(directory)
                d.mkdir(parents=True, exist_ok=True)
                ca, ca_key = d / "pki-ca.pem", d / "pki-ca.key"
                _run_openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt",
                              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(ca_key),
                              "-out", str(ca), "-days", "2", "-subj",
                              "/CN=secrets-run pki CA (throwaway)", "-addext",
                              "basicConstraints=critical,CA:TRUE"], d)
                self.pki[full] = {"ca": ca, "ca_key": ca_key, "dir": d, "roles": {}}
            self.pki[full]["roles"][role] = {"generate_lease": generate_lease,
                                             "max_ttl": max_ttl}

    def _pki_issue(self, mount, rel, role, body, tok):
        """builtin/logical/pki/path_issue_sign.go: POST MOUNT/issue/ROLE with common_name
        (400 "the common_name field is required" without) and ttl; data has certificate,
        issuing_ca, ca_chain, private_key, private_key_type, serial_number, expiration;
        a lease (not renewable, TTL until NotAfter) only if the role has generate_lease."""
        pki = self.pki[mount]
        conf = pki["roles"].get(role)
        if conf is None:
            raise VaultError(400, [f"unknown role: {role}"])
        cn = body.get("common_name")
        if not cn:
            raise VaultError(400, ["the common_name field is required, or must be provided "
                                   "in a CSR with \"use_csr_common_name\" set to true, unless "
                                   "\"require_cn\" is set to false"])
        try:
            ttl = min(parse_duration(body.get("ttl"), 3600), conf["max_ttl"])
        except ValueError:
            raise VaultError(400, ["invalid ttl"]) from None
        d = pki["dir"]
        stem = d / secrets.token_hex(6)
        key, csr, cert = stem.with_suffix(".key"), stem.with_suffix(".csr"), stem.with_suffix(".pem")
        _run_openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}"], d)
        serial = secrets.token_hex(8)
        _run_openssl(["x509", "-req", "-in", str(csr), "-CA", str(pki["ca"]), "-CAkey",
                      str(pki["ca_key"]), "-set_serial", f"0x{serial}", "-out", str(cert),
                      "-days", "1"], d)
        private_key, certificate = key.read_text(), cert.read_text()
        for f in (key, csr, cert):
            f.unlink()
        issuing_ca = Path(pki["ca"]).read_text()
        serial_str = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))
        data = {"certificate": certificate.strip(), "issuing_ca": issuing_ca.strip(),
                "ca_chain": [issuing_ca.strip()], "private_key": private_key.strip(),
                "private_key_type": "ec", "serial_number": serial_str,
                "expiration": int(time.time()) + ttl}
        lease_id = ""
        if conf["generate_lease"]:
            lease_id = f"{rel}/{secrets.token_urlsafe(18)}"
            lease = Lease(lease_id, tok, ttl, ttl, renewable=False)
            lease.password = data["private_key"]
            self.leases[lease_id] = lease
        self.pki_certs[serial_str] = {"lease_id": lease_id, "revoked": False, "cn": cn,
                                      "ttl": ttl, "private_key": data["private_key"]}
        return 200, self.envelope(data=data, lease_id=lease_id, lease_duration=ttl if lease_id else 0,
                                  mount_type="pki")

    def _pki_revoke(self, mount, body, tok):
        """builtin/logical/pki/path_revoke.go: POST MOUNT/revoke {serial_number}; not in the
        default policy (403 without a policy granting it)."""
        if not self._allowed(tok, f"{self.mounts[mount]['rel']}/revoke"):
            raise VaultError(403, ["permission denied"])
        c = self.pki_certs.get(body.get("serial_number", ""))
        if c is None:
            raise VaultError(400, ["certificate with serial not found"])
        c["revoked"] = True
        return 200, self.envelope(data={"revocation_time": int(time.time())})

    def lease(self, lease_id):
        with self.lock:
            return self.leases.get(lease_id)

    def secret_values(self, min_len=8):
        """Every secret string the double knows at call time, for leak checks: the root
        token, issued tokens, AppRole secret IDs, database passwords, and the KV v1/v2 values
        (str values at least min_len long; shorter ones would match by accident)."""
        out = set()
        with self.lock:
            out.update(self.tokens)
            for roles in self.approle_roles.values():
                for role in roles.values():
                    out.update(role["secret_ids"])
            out.update(l.password for l in self.leases.values() if l.password)
            out.update(c["private_key"] for c in self.pki_certs.values())
            for mount in self.kv2.values():
                for entry in mount["paths"].values():
                    for v in entry["versions"].values():
                        out.update(x for x in (v["data"] or {}).values() if isinstance(x, str))
            for mount in self.kv1.values():
                for data in mount.values():
                    out.update(x for k, x in data.items() if isinstance(x, str) and k != "ttl")
        return sorted(v for v in out if len(v) >= min_len)

    def active_leases(self):
        with self.lock:
            return [l for l in self.leases.values() if l.active]

    # ---- dispatch (called by the handler with the lock NOT held) ----

    def envelope(self, data=None, auth=None, lease_id="", renewable=False, lease_duration=0,
                 mount_type="", warnings=None):
        return {"request_id": str(uuid.uuid4()), "lease_id": lease_id, "renewable": renewable,
                "lease_duration": lease_duration, "data": data, "wrap_info": None,
                "warnings": warnings, "auth": auth, "mount_type": mount_type}

    def _auth_obj(self, tok, metadata=None):
        return {"client_token": tok.id, "accessor": tok.accessor, "policies": tok.policies,
                "token_policies": tok.policies, "metadata": metadata, "lease_duration":
                tok.remaining(), "renewable": tok.renewable, "entity_id": tok.entity_id,
                "token_type": tok.type, "orphan": tok.orphan, "num_uses": tok.num_uses}

    def _issue(self, ttl, max_ttl, policies, path, display_name, meta, token_type="service",
               num_uses=0):
        prefix = "hvb." if token_type == "batch" else "hvs."
        tok = Token(prefix + secrets.token_urlsafe(24), ttl, True, policies, path,
                    display_name, meta=meta, max_ttl=max_ttl, token_type=token_type,
                    num_uses=num_uses)
        self.tokens[tok.id] = tok
        return tok

    def _allowed(self, tok, path):
        """Whether tok's policies grant path beyond Vault's default policy. Only paths the
        client's behaviour depends on are checked this way (sys/leases/revoke)."""
        for name in tok.policies:
            granted = self.policies.get(name, set())
            if "*" in granted or path in granted:
                return True
        return False

    def resolve_namespace(self, header, rel):
        """(namespace, path within it) for a request, or (None, None) if the header names no
        namespace. vault/namespace_store.go (ResolveNamespaceFromRequest): the header is
        stacked ahead of the path, the longest namespace prefix of the result wins, and it
        must cover the whole header."""
        h = (header or "").strip("/")
        if h == "root":
            h = ""
        stacked = f"{h}/{rel}" if h else rel
        best = ""
        for ns in self.namespaces:
            if ns and (stacked == ns or stacked.startswith(ns + "/")) and len(ns) > len(best):
                best = ns
        if not (best == h or best.startswith(h + "/") or h == ""):
            return None, None
        return best, stacked[len(best) + 1:] if best else stacked

    def match_mount(self, ns, path, table="secrets"):
        """(full mount, entry, rest of the path) of the mount of ns that path is under, or
        (None, None, None). vault/routing/router.go MatchingMountEntry: longest prefix."""
        best = None
        for full, e in self.mounts.items():
            if e["ns"] != ns or e["table"] != table:
                continue
            if (path == e["rel"] or path.startswith(e["rel"] + "/")) and \
                    (best is None or len(e["rel"]) > len(self.mounts[best]["rel"])):
                best = full
        if best is None:
            return None, None, None
        e = self.mounts[best]
        return best, e, path[len(e["rel"]) + 1:]

    def handle(self, method, path, query, token, body, ns_header=None, client_cert=None):
        """Returns (status, json-able body or None[, headers]); raises VaultError."""
        rel = path[len("/v1/"):] if path.startswith("/v1/") else None
        if rel is None:
            raise VaultError(404, [])
        if rel == "sys/health":
            return self._health(query)
        if self.health["sealed"]:
            # vault/request_handling.go: every request but sys/health, sys/seal-status and
            # sys/unseal fails with consts.ErrSealed ("Vault is sealed", 503) while sealed
            raise VaultError(503, ["Vault is sealed"])
        ns, rel = self.resolve_namespace(ns_header, rel)
        if ns is None:
            raise VaultError(404, ["no handler for route; namespace not found"])
        parts = rel.split("/")
        if parts[0] == "auth" and len(parts) >= 3 and parts[-1] == "login" \
                and parts[1] != "token":
            if method not in ("POST", "PUT"):
                raise VaultError(405, [])
            return self._login(ns, "/".join(parts[1:-1]), body, client_cert)
        with self.lock:
            tok = self.tokens.get(token) if token else None
            if rel.startswith("sys/internal/ui/mounts/"):
                # vault/logical_system.go: an unauthenticated path (handleLoginRequest), so
                # the token is checked but no use of it is spent
                return self._ui_mount(ns, rel[len("sys/internal/ui/mounts/"):], tok)
            if tok is None or not tok.valid:
                raise VaultError(403, ["permission denied"])
            # vault/request_handling.go (handleRequest -> TokenStore.UseToken): every
            # authenticated request spends one use of a token with num_uses, also one that
            # fails; the last use is allowed, and the token (with its leases) is revoked
            # when that request is done
            last_use = False
            if tok.num_uses > 0:
                tok.num_uses -= 1
                last_use = tok.num_uses == 0
            try:
                out = self._authed(method, ns, rel, parts, query, tok, body)
            finally:
                if last_use:
                    self._revoke_token(tok)
            prefix = path
            warn = [t for p, t in self.warnings if prefix.startswith(p)]
            if warn and out[0] == 200 and isinstance(out[1], dict):
                out[1]["warnings"] = (out[1].get("warnings") or []) + warn
            return out

    def _ui_mount(self, ns, path, tok):
        """GET sys/internal/ui/mounts/<path>: the mount path is under, as Vault's CLI asks it
        before every kv command (command/kv_helpers.go kvPreflightVersionRequest).
        vault/logical_system.go pathInternalUIMountRead: no mount, or no access to it, is
        403 with the same text (so it cannot list mounts); data is mountInfo() plus "path",
        which for a mount in a child namespace of the request's is that namespace's path
        and the mount's ("ns1/secret/")."""
        if self.ui_mounts == "absent":
            raise VaultError(404, [])    # Vault before 0.10: command/kv_helpers.go reads KV v1
        path = path.strip("/")
        denied = VaultError(403, ["preflight capability check returned 403, please ensure "
                                  f"client's policies grant access to path \"{path}/\""])
        if tok is None or not tok.valid or self.ui_mounts == "denied":
            raise denied
        # the router matches mounts of child namespaces too: find the deepest namespace
        ns2, rest = self.resolve_namespace(ns, path) if ns else self.resolve_namespace("", path)
        full, e, _ = self.match_mount(ns2, rest)
        table = "secrets"
        if full is None and rest.startswith("auth/"):
            full, e, _ = self.match_mount(ns2, rest[5:], table="auth")
            table = "auth"
        if full is None:
            raise denied
        child = ns2[len(ns) + 1:] if ns else ns2
        shown = (f"{child}/" if child else "") + ("auth/" if table == "auth" else "") + e["rel"] + "/"
        options = {"version": str(e["version"])} if e["type"] == "kv" else None
        data = {"type": e["type"], "description": "", "accessor": e["accessor"],
                "local": False, "seal_wrap": False, "external_entropy_access": False,
                "options": options, "uuid": e["uuid"], "plugin_version": "",
                "running_plugin_version": f"v2.0.0+builtin.{e['type']}", "running_sha256": "",
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False},
                "path": shown}
        return 200, self.envelope(data=data)

    def _health(self, query):
        sealed = self.health["sealed"]
        body = {"clock_skew_ms": 0, "cluster_id": self.cluster_id,
                "cluster_name": "vault-test-double", "echo_duration_ms": 0,
                "enterprise": False, "initialized": True, "performance_standby": False,
                "replication_dr_mode": "disabled", "replication_performance_mode": "disabled",
                "sealed": sealed, "server_time_utc": int(time.time()),
                "standby": self.health["standby"], "version": "1.16.0-testdouble"}
        if sealed:
            status = int(query.get("sealedcode", 503))
        elif self.health["standby"] and "standbyok" not in query:
            status = int(query.get("standbycode", 429))
        else:
            status = int(query.get("activecode", 200))
        return status, body

    def _login(self, ns, mount, body, client_cert=None):
        with self.lock:
            full, e, _ = self.match_mount(ns, mount, table="auth")
            if e is None or e["rel"] != mount:
                raise VaultError(404, [f"no handler for route \"auth/{mount}/login\". "
                                       "route entry not found."])
            kind = e["type"]
            token_type, num_uses = "service", 0
            if kind == "approle":
                role_id, secret_id = body.get("role_id"), body.get("secret_id")
                role = self.approle_roles.get(full, {}).get(role_id)
                if role is None:
                    raise VaultError(400, ["invalid role or secret ID"])
                if secret_id not in role["secret_ids"]:
                    raise VaultError(400, ["invalid role or secret ID"])
                if (full, secret_id) in self.approle_race:
                    # see spend_secret_id_concurrently: the entry is gone by the second read
                    self.approle_race.discard((full, secret_id))
                    role["secret_ids"].discard(secret_id)
                    raise VaultError(400, [f"invalid secret_id \"{secret_id}\""])
                meta = {"role_name": role["name"]}
                display = mount
                token_type, num_uses = role.get("token_type", "service"), role.get("num_uses", 0)
            elif kind == "kubernetes":
                role, meta, display = self._k8s_login(full, body)
            elif kind == "cert":
                role, meta, display = self._cert_login(full, body, client_cert)
            else:
                name = body.get("role")
                role = self.jwt_roles.get(full, {}).get(name)
                if role is None:
                    raise VaultError(400, [f"role \"{name}\" could not be found"])
                claims = self._verify_jwt(body.get("jwt"), role)
                meta = {"role": name}
                display = f"{mount}-{claims.get('sub', '')}"
            tok = self._issue(role["ttl"], role["max_ttl"], role["policies"],
                              f"auth/{mount}/login", display, meta, token_type, num_uses)
            return 200, self.envelope(auth=self._auth_obj(tok, meta))

    def _k8s_login(self, mount, body):
        """builtin/credential/kubernetes/path_login.go pathLogin: "missing role" / "missing
        jwt" (400), an unknown role 400 `invalid role name "x"`, a token that does not
        verify (the double checks its HS256 signature where Vault asks the TokenReview API)
        403 permission denied, a service account or namespace the role does not bind 403.
        Display name NAMESPACE-NAME; metadata as Vault's."""
        for param in ("role", "jwt"):
            if not body.get(param):
                raise VaultError(400, [f"missing {param}"])
        role = self.k8s_roles.get(mount, {}).get(body["role"])
        if role is None:
            raise VaultError(400, [f"invalid role name \"{body['role']}\""])
        try:
            claims = self._verify_jwt(body["jwt"], {"aud": [], "bound_claims": {}}, check_aud=False)
        except VaultError:
            raise VaultError(403, ["permission denied"]) from None
        k8s = claims.get("kubernetes.io") or {}
        sa = (k8s.get("serviceaccount") or {}).get("name") or \
            claims.get("kubernetes.io/serviceaccount/service-account.name", "")
        sa_ns = k8s.get("namespace") or claims.get("kubernetes.io/serviceaccount/namespace", "")
        if role["names"] != ["*"] and sa not in role["names"]:
            raise VaultError(403, ["service account name not authorized"])
        if role["namespaces"] != ["*"] and sa_ns not in role["namespaces"]:
            raise VaultError(403, ["namespace not authorized"])
        meta = {"service_account_name": sa, "service_account_namespace": sa_ns,
                "role": body["role"]}
        return role, meta, f"{sa_ns}-{sa}"

    def _cert_login(self, mount, body, client_cert):
        """builtin/credential/cert/path_login.go: the TLS client certificate must chain to a
        trusted certificate of a role (name: that one only); else 400 "invalid certificate
        or no client certificate supplied". The double's TLS layer verified the chain against
        every role's CA; here the matching role is chosen by the certificate's issuer."""
        if not client_cert:
            raise VaultError(400, ["invalid certificate or no client certificate supplied"])
        roles = self.cert_roles.get(mount, {})
        name = body.get("name")
        issuer = dict(x[0] for x in client_cert.get("issuer", ()))
        for rname, role in roles.items():
            if (not name or rname == name) and issuer.get("commonName") == role["ca_cn"]:
                subject = dict(x[0] for x in client_cert.get("subject", ()))
                meta = {"cert_name": rname, "common_name": subject.get("commonName", "")}
                return role, meta, rname
        raise VaultError(400, ["invalid certificate or no client certificate supplied"])

    def _verify_jwt(self, token, role, check_aud=True):
        if not isinstance(token, str) or token.count(".") != 2:
            raise VaultError(400, ["missing token" if not token else
                                   "error validating token: malformed token"])
        h, p, s = token.split(".")
        try:
            header = json.loads(_b64url_decode(h))
            claims = json.loads(_b64url_decode(p))
            sig = _b64url_decode(s)
        except (ValueError, TypeError):
            raise VaultError(400, ["error validating token: malformed token"]) from None
        if header.get("alg") != "HS256":
            raise VaultError(400, ["error validating token: unsupported signing algorithm"])
        want = hmac.new(self.jwt_key, f"{h}.{p}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(want, sig):
            raise VaultError(400, ["error validating token: failed to verify id token "
                                   "signature"])
        now = time.time()
        if "exp" not in claims or now >= claims["exp"]:
            raise VaultError(400, ["error validating claims: token is expired (exp)"
                                   if "exp" in claims else "error validating claims: "
                                   "exp claim is required"])
        if "nbf" in claims and now < claims["nbf"]:
            raise VaultError(400, ["error validating claims: token not yet valid (nbf)"])
        if not check_aud:
            return claims
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else list(aud or [])
        if not set(auds) & set(role["aud"]):
            raise VaultError(400, ["error validating token: invalid audience (aud) claim: "
                                   "audience claim does not match any expected audience"])
        for k, v in role["bound_claims"].items():
            if claims.get(k) != v:
                raise VaultError(400, [f"error validating claims: claim \"{k}\" does not "
                                       "match any associated bound claim values"])
        return claims

    def _authed(self, method, ns, rel, parts, query, tok, body):
        write = method in ("POST", "PUT")
        if rel == "auth/token/lookup-self":
            return 200, self.envelope(data=self._lookup(tok), mount_type="token")
        if rel == "auth/token/renew-self":
            if not write:
                raise VaultError(405, [])
            return self._renew_self(tok, body)
        if rel == "auth/token/revoke-self":
            if not write:
                raise VaultError(405, [])
            if tok.type == "batch":
                # vault/token_store.go revokeCommon: ErrorResponse with no error -> 400
                raise VaultError(400, ["batch tokens cannot be revoked"])
            self._revoke_token(tok)
            return 204, None
        if parts[:2] == ["sys", "leases"] and len(parts) >= 3 and parts[2] in ("renew",
                                                                              "revoke"):
            if not write:
                raise VaultError(405, [])
            lease_id = body.get("lease_id") or "/".join(parts[3:])
            if parts[2] == "renew":
                return self._renew_lease(lease_id, body)
            # vault/policy/policy_store.go DefaultPolicy grants sys/leases/renew and
            # lookup but not sys/leases/revoke: a token with only "default" gets 403 (the
            # vault-api README's 6b says so too)
            if not self._allowed(tok, "sys/leases/revoke"):
                raise VaultError(403, ["permission denied"])
            lease = self.leases.get(lease_id)
            if lease is not None:
                lease.revoked = True
            return 204, None
        full, e, rest = self.match_mount(ns, rel)
        if e is None:
            raise VaultError(404, [f"no handler for route \"{rel}\". route entry not found."])
        sub = rest.split("/") if rest else []
        if e["type"] == "kv" and e["version"] == 2:
            if len(sub) >= 2 and sub[0] in ("data", "metadata"):
                key = "/".join(sub[1:])
                if sub[0] == "metadata":
                    if method != "GET":
                        raise VaultError(405, [])
                    return self._kv2_metadata(full, key)
                if method == "GET":
                    return self._kv2_read(full, key, query)
                if write:
                    return self._kv2_write_req(full, key, body)
                raise VaultError(405, [])
            # vault-plugin-secrets-kv backend.go pathInvalid (openbao
            # builtin/logical/kv/backend.go): any other path of a KV v2 mount is 404 with
            # a warning naming the kv subcommand, and no error
            cmd = {"GET": "get", "POST": "put", "PUT": "put", "DELETE": "delete",
                   "LIST": "list", "PATCH": "patch"}.get(method, "get")
            return 404, self.envelope(warnings=[
                "Invalid path for a versioned K/V secrets engine. See the API docs for the "
                "appropriate API endpoints to use. If using the Vault CLI, use "
                f"'vault kv {cmd}' for this operation."])
        if e["type"] == "database" and len(sub) == 2 and sub[0] == "creds":
            if method != "GET":
                raise VaultError(405, [])
            return self._db_creds(full, rel, sub[1], tok)
        if e["type"] == "pki" and (sub == ["revoke"] or (len(sub) == 2 and sub[0] == "issue")):
            if not write:
                raise VaultError(405, [])
            if sub[0] == "revoke":
                return self._pki_revoke(full, body, tok)
            return self._pki_issue(full, rel, sub[1], body, tok)
        if e["type"] == "kv" and rest:
            if method != "GET":
                raise VaultError(405, [])
            data = self.kv1[full].get(rest)
            if data is None:
                raise VaultError(404, [])
            try:
                ttl = parse_duration(data.get("ttl"), _DEFAULT_KV1_TTL)
            except ValueError:
                ttl = _DEFAULT_KV1_TTL
            return 200, self.envelope(data=dict(data), lease_duration=ttl, mount_type="kv")
        raise VaultError(404, [f"no handler for route \"{rel}\". route entry not found."])

    def _lookup(self, tok):
        return {"accessor": tok.accessor, "creation_time": int(tok.created),
                "creation_ttl": tok.creation_ttl, "display_name": tok.display_name,
                "entity_id": tok.entity_id,
                "expire_time": rfc3339(tok.expire) if tok.expire else None,
                "explicit_max_ttl": 0, "id": tok.id, "identity_policies": [],
                "issue_time": rfc3339(tok.created), "meta": tok.meta,
                "num_uses": tok.num_uses, "orphan": tok.orphan, "path": tok.path,
                "policies": tok.policies, "renewable": tok.renewable, "ttl": tok.remaining(),
                "type": tok.type}

    def _renew_self(self, tok, body):
        if tok.type == "batch":
            # vault/token_store.go handleRenew(Self): ErrorResponse with no error -> 400
            raise VaultError(400, ["batch tokens cannot be renewed"])
        if not tok.renewable:
            raise VaultError(400, ["lease is not renewable"])
        try:
            inc = parse_duration(body.get("increment"), tok.creation_ttl)
        except ValueError:
            raise VaultError(400, ["invalid increment"]) from None
        now = time.time()
        new_expire = now + inc
        if tok.max_expire is not None:
            new_expire = min(new_expire, tok.max_expire)
        tok.expire = new_expire
        tok.renewals += 1
        return 200, self.envelope(auth=self._auth_obj(tok, tok.meta), mount_type="token")

    def _revoke_token(self, tok):
        # vault/expiration.go RevokeByToken: the token's leases are lazily revoked (marked
        # expired now, revoked by the expiration manager); the double revokes them at once
        tok.revoked = True
        for lease in self.leases.values():
            if lease.token is tok:
                lease.revoked = True

    def _renew_lease(self, lease_id, body):
        lease = self.leases.get(lease_id)
        if lease is None or not lease.active:
            raise VaultError(400, ["lease not found"])
        if not lease.renewable:
            raise VaultError(400, ["lease is not renewable"])
        conf = lease.conf or {"ttl": 3}
        try:
            inc = parse_duration(body.get("increment"), conf["ttl"])
        except ValueError:
            raise VaultError(400, ["invalid increment"]) from None
        now = time.time()
        lease.expire = min(now + (inc or conf["ttl"]), lease.max_expire)
        lease.renewals += 1
        ttl = max(0, int(round(lease.expire - now)))
        return 200, self.envelope(lease_id=lease.id, renewable=True, lease_duration=ttl)

    def _db_creds(self, mount, rel, role, tok):
        conf = self.db_roles.get((mount, role))
        if conf is None:
            raise VaultError(400, [f"unknown role: {role}"])
        # docs/concepts/lease.mdx: a lease id is prefixed by the path it was read from
        lease_id = f"{rel}/{secrets.token_urlsafe(18)}"
        renewable = conf.get("renewable", True)
        lease = Lease(lease_id, tok, conf["ttl"], conf["max_ttl"], renewable)
        lease.conf = conf
        lease.username = f"v-{role}-{secrets.token_hex(6)}"
        lease.password = secrets.token_urlsafe(24)
        self.leases[lease_id] = lease
        data = {"username": lease.username, "password": lease.password}
        return 200, self.envelope(data=data, lease_id=lease_id, renewable=renewable,
                                  lease_duration=conf["ttl"], mount_type="database")

    def _kv2_version_meta(self, entry, n):
        v = entry["versions"][n]
        return {"created_time": rfc3339(v["created"]),
                "custom_metadata": entry["custom_metadata"],
                "deletion_time": v["deletion_time"], "destroyed": v["destroyed"],
                "version": n}

    def _kv2_read(self, mount, path, query):
        entry = self.kv2[mount]["paths"].get(path)
        if entry is None:
            raise VaultError(404, [])
        try:
            n = int(query.get("version", 0) or 0)
        except ValueError:
            raise VaultError(400, ["invalid version"]) from None
        n = n or entry["current"]
        v = entry["versions"].get(n)
        if v is None:
            raise VaultError(404, [])
        meta = self._kv2_version_meta(entry, n)
        deleted = v["deletion_time"] != "" and \
            dt.datetime.strptime(v["deletion_time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=dt.timezone.utc).timestamp() <= time.time()
        if deleted or v["destroyed"]:
            return 404, self.envelope(data={"data": None, "metadata": meta}, mount_type="kv")
        return 200, self.envelope(data={"data": dict(v["data"]), "metadata": meta},
                                  mount_type="kv")

    def _kv2_metadata(self, mount, path):
        entry = self.kv2[mount]["paths"].get(path)
        if entry is None:
            raise VaultError(404, [])
        versions = {str(n): {"created_time": rfc3339(v["created"]),
                             "deletion_time": v["deletion_time"], "destroyed": v["destroyed"]}
                    for n, v in sorted(entry["versions"].items())}
        data = {"cas_required": self.kv2[mount]["cas_required"],
                "created_time": rfc3339(entry["created"]),
                "current_version": entry["current"], "delete_version_after": "0s",
                "max_versions": 0, "oldest_version": 0,
                "updated_time": rfc3339(entry["updated"]),
                "custom_metadata": entry["custom_metadata"], "versions": versions}
        return 200, self.envelope(data=data, mount_type="kv")

    def _kv2_write_req(self, mount, path, body):
        data = body.get("data")
        if not isinstance(data, dict):
            raise VaultError(400, ["no data provided"])
        options = body.get("options") or {}
        entry = self.kv2[mount]["paths"].get(path)
        current = entry["current"] if entry else 0
        if "cas" in options:
            if options["cas"] != current:
                raise VaultError(400, ["check-and-set parameter did not match the current "
                                       "version"])
        elif self.kv2[mount]["cas_required"]:
            raise VaultError(400, ["check-and-set parameter required for this call"])
        meta = self._kv2_write(mount, path, dict(data))
        return 200, self.envelope(data=meta, mount_type="kv")


# ---------------------------------------------------------------- HTTP handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vault-test-double"
    timeout = 30

    def log_message(self, *args):
        pass    # the request log is ours; keep stderr quiet

    def address_string(self):
        return str(self.client_address[0]) if self.client_address else "unix"

    def _dispatch(self):
        vault = self.server.vault
        url = urlsplit(self.path)
        # Go's net/http (Vault's server) routes on the decoded path: "a%20b" is "a b"
        path = unquote(url.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        method = self.command
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        token, token_header = None, None
        if self.headers.get("X-Vault-Token"):
            token, token_header = self.headers["X-Vault-Token"], "X-Vault-Token"
        elif (self.headers.get("Authorization") or "").startswith("Bearer "):
            token, token_header = self.headers["Authorization"][7:].strip(), "Authorization"
        elif getattr(self.server, "auto_auth_token", None):
            # see serve_unix: the agent's auto-auth token stands in
            token, token_header = self.server.auto_auth_token, "agent"
        body, bad_json = {}, False
        if raw.strip():
            try:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    bad_json = True
            except ValueError:
                bad_json = True
        kv_write = method in ("POST", "PUT") and "/data/" in path
        tok = vault.token_info(token) if token else None
        entry = {"method": method, "path": path, "raw_path": url.path, "query": query,
                 "token": token is not None, "token_header": token_header,
                 "accessor": tok.accessor if tok else None,
                 "namespace": self.headers.get("X-Vault-Namespace"),
                 "vault_request": self.headers.get("X-Vault-Request"),
                 "body": redact(body, kv_write) if isinstance(body, dict) else None,
                 "status": None, "fault": None, "time": time.monotonic()}
        with vault.lock:
            vault.log.append(entry)

        lat = vault._take_fault(path, ("latency",))
        while lat is not None:
            time.sleep(lat.ms / 1000.0)
            break
        f = vault._take_fault(path, ("429", "500", "503", "badjson", "truncated", "close",
                                     "412", "504", "307"))
        if f is not None:
            entry["fault"] = f.kind
            return self._fault(f, path, entry)

        if bad_json:
            return self._send(entry, 400, {"errors": ["failed to parse JSON input"]})
        cert = None
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                cert = self.connection.getpeercert()
            except (ValueError, OSError):
                cert = None
        try:
            status, out = vault.handle(method, path, query, token, body,
                                       ns_header=entry["namespace"], client_cert=cert)
        except VaultError as e:
            return self._send(entry, e.status, {"errors": e.errors} if e.body else None, e.headers)
        return self._send(entry, status, out)

    def _fault(self, f, path, entry):
        kind = f.kind
        if kind == "429":
            # http/util.go rateLimitQuotaWrapping; Retry-After as quotas-config documents
            # (seconds). RFC 9110 also allows an HTTP date, which proxies send: retry_after
            # may be either.
            return self._send(entry, 429, {"errors": [
                f"request path \"{path[len('/v1/'):]}\": rate limit quota exceeded"]},
                {"Retry-After": f.retry_after, "X-Ratelimit-Limit": "1", "X-Ratelimit-Remaining": "0",
                 "X-Ratelimit-Reset": "1"})
        if kind == "500":
            return self._send(entry, 500, {"errors": ["internal error"]})
        if kind == "503":
            return self._send(entry, 503, {"errors": ["Vault is sealed"]})
        if kind == "412":
            # hashicorp/vault sdk/logical/error.go ErrMissingRequiredState: a performance
            # standby that has not yet replicated the state the request needs (412);
            # api/client.go DefaultRetryPolicy retries it
            return self._send(entry, 412, {"errors": ["required index state not present"]})
        if kind == "504":
            # not Vault's own answer (openbao internal/http never sends 504): a load
            # balancer or proxy in front of it timing out; go-retryablehttp's
            # baseRetryPolicy retries every 5xx but 501
            return self._send_raw(entry, 504, b"upstream request timeout",
                                  content_type="text/plain")
        if kind == "307":
            # http/handler.go respondStandby: a standby redirects to the active node with
            # the same path and query; the fault's ms field is unused, its target is
            # VaultServer.redirect_to (another double playing the active node)
            target = self.server.vault.redirect_to
            url = urlsplit(self.path)
            loc = f"{target}{url.path}" + (f"?{url.query}" if url.query else "")
            return self._send(entry, 307, None, {"Location": loc, "Content-Length": "0"})
        if kind == "badjson":
            return self._send_raw(entry, 200, b'{"request_id": "x", "data": {"oops": ')
        if kind == "truncated":
            payload = json.dumps(self.server.vault.envelope(data={"partial": "x" * 64})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) + 100))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            entry["status"] = 200
            self._hard_close()
            return
        if kind == "close":
            entry["status"] = 0
            self._hard_close()
            return

    def _hard_close(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, entry, status, obj, headers=None):
        if obj is None:
            entry["status"] = status
            self.send_response(status)
            headers = dict(headers or {})
            if status != 204:
                headers.setdefault("Content-Length", "0")
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            return
        self._send_raw(entry, status, json.dumps(obj).encode(), headers)

    def _send_raw(self, entry, status, payload, headers=None, content_type="application/json"):
        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_LIST = _dispatch


# ---------------------------------------------------------------- standalone mode
# `python3 integration/vault_server.py --serve --state-dir DIR` runs the double outside pytest
# (examples/vault-jwt runs its pipeline against it). It seeds what a CI pipeline reads, writes
# what a runner would be given into DIR, serves until SIGTERM/SIGINT, then writes what happened
# to the leases and tokens into DIR/summary.json (counts only, never a value).

import argparse
import os
import signal
import sys


def _write_private(path, text):
    """Writes text to a new 0600 file (a value must not be readable by others, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _serve_summary(server):
    with server.lock:
        leases = list(server.leases.values())
        logins = [t for t in server.tokens.values() if t.id != server.root_token]
        return {
            "requests": len(server.log),
            "logins": len(logins),
            "login_tokens_revoked": sum(1 for t in logins if t.revoked),
            "leases_issued": len(leases),
            "leases_revoked": sum(1 for l in leases if l.revoked),
            "leases_renewed": sum(1 for l in leases if l.renewals),
        }


def _serve_main(argv=None):
    ap = argparse.ArgumentParser(
        description="Run the Vault test double (HTTPS on 127.0.0.1) until SIGTERM. Writes to "
                    "STATE_DIR: addr (base URL), ca.pem (its throwaway CA), jwt (0600, an HS256 "
                    "token for the JWT role, as a CI system's OIDC/id_tokens would give), "
                    "ready (last); at exit summary.json (lease and token counts).")
    ap.add_argument("--serve", action="store_true", required=True,
                    help="serve (the only mode; required so the file is not started by accident)")
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--role", default="ci", help="JWT auth role (mount jwt); default ci")
    ap.add_argument("--audience", default="https://vault.example.com",
                    help="the role's bound audience and the token's aud")
    ap.add_argument("--claim", action="append", default=[], metavar="KEY=VALUE",
                    help="a claim the role requires and the token carries (repeatable), "
                         "e.g. ref=main")
    ap.add_argument("--kv2", action="append", default=[], metavar="PATH#FIELD",
                    help="a KV v2 value to seed with a random string (repeatable), "
                         "e.g. ci/app#api_key for secret/data/ci/app")
    ap.add_argument("--db-role", default="app", help="database role (database/creds/ROLE)")
    ap.add_argument("--db-ttl", type=int, default=3, help="lease TTL of database creds, s")
    ap.add_argument("--jwt-ttl", type=int, default=600, help="lifetime of the JWT, s")
    args = ap.parse_args(argv)

    state = args.state_dir
    state.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_test_pki(state / "pki", "vault")
    server = VaultServer(secrets.token_urlsafe(24), tls=(cert, key))
    claims = dict(c.split("=", 1) for c in args.claim)
    server.add_jwt_role(args.role, [args.audience], bound_claims=claims)
    server.add_db_role(args.db_role, ttl=args.db_ttl, max_ttl=max(30, 10 * args.db_ttl))
    seeded = {}
    for ref in args.kv2:
        path, _, field = ref.partition("#")
        seeded.setdefault(path, {})[field or "value"] = secrets.token_urlsafe(24)
    for path, data in seeded.items():
        server.kv2_put(path, data)
    server.start()

    (state / "ca.pem").write_bytes(Path(ca).read_bytes())
    (state / "addr").write_text(server.addr + "\n")
    _write_private(state / "jwt", server.jwt(args.role, exp=args.jwt_ttl, **claims))
    (state / "ready").write_text(f"{os.getpid()}\n")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    server.stop()
    (state / "summary.json").write_text(json.dumps(_serve_summary(server), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_serve_main())
