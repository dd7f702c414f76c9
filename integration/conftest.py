"""Fixtures for the end-to-end tests of the built secrets-run binary.

Where the binary is, a per-test project (working directory, manifest writer, a data directory
for step scripts, expected values and reports, a private $XDG_RUNTIME_DIR on tmpfs), a runner
that returns (status, stdout, stderr), and two guards checked after every test: no secret value
a test generated appears in anything secrets-run or the step printed, and no per-run secrets
directory is left behind.

Secret values are generated at test time; none is written literally in this repository.
"""

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from util import fs_type, processes_with_arg

HERE = Path(__file__).resolve().parent
DEFAULT_BIN = HERE.parent / "build" / "agent" / "secrets-run"

# The caller's variables that would change the CI context, the configuration or the secrets
# directory of a run; the tests set what they need explicitly.
_DROP_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "BUILDKITE", "JENKINS_", "RUNNER_",
                  "ACTIONS_", "SECRETS_RUN_", "VAULT_", "BAO_")
_DROP_NAMES = {"CI", "GITLAB_CI", "BUILD_ID", "BUILD_NUMBER", "BUILD_URL", "JOB_NAME",
               "BRANCH_NAME", "CHANGE_ID", "GIT_BRANCH", "XDG_RUNTIME_DIR", "TF_BUILD"}


class Result(tuple):
    """(status, stdout, stderr) of one secrets-run invocation, plus .elapsed seconds.

    stdout/stderr are str (undecodable bytes kept as surrogates) unless the run asked for
    binary=True. status is negative if secrets-run itself was killed by a signal."""

    def __new__(cls, status, stdout, stderr, elapsed):
        self = super().__new__(cls, (status, stdout, stderr))
        self.status, self.stdout, self.stderr, self.elapsed = status, stdout, stderr, elapsed
        return self

    @property
    def output(self):
        return self.stdout + self.stderr

    def __repr__(self):
        return (f"Result(status={self.status}, elapsed={self.elapsed:.1f}s,\n"
                f"  stdout={self.stdout[-2000:]!r},\n  stderr={self.stderr[-4000:]!r})")


class Running:
    """A secrets-run started in the background (for signal tests)."""

    def __init__(self, project, popen, binary):
        self.project, self.popen, self.binary = project, popen, binary
        self.pid = popen.pid
        self.started = time.monotonic()

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=60):
        return self.project._finish(self.popen, timeout, self.binary, self.started)


class Project:
    """One test's world: proj/ is the working directory (the manifest lives there), data/ holds
    step scripts, expected values and reports, outside the working directory."""

    def __init__(self, base, binary, runtime):
        self.base = base
        self.dir = base / "proj"
        self.data = base / "data"
        self.dir.mkdir()
        self.data.mkdir()
        self.bin = binary
        self.runtime = runtime                # private XDG_RUNTIME_DIR on tmpfs, or None
        self.values = []                      # every secret value this test generated
        self.outputs = []                     # every (stdout, stderr) captured, as bytes
        self.secrets_dirs = []                # $SECRETS_DIR paths steps reported
        self.tags = [str(self.data)]          # command-line marks of processes tests start
        self._n = 0
        env = {k: v for k, v in os.environ.items()
               if k not in _DROP_NAMES and not k.startswith(_DROP_PREFIXES)}
        env.update({
            "LC_ALL": "C",
            "XDG_STATE_HOME": str(base / "state"),     # the default audit log goes here
            "XDG_CONFIG_HOME": str(base / "config"),
        })
        if runtime:
            env["XDG_RUNTIME_DIR"] = str(runtime)
        self.env = env

    # ---- values ----

    def secret(self, nbytes=24):
        """A fresh random value (URL-safe text), registered for the leak check."""
        return self.register(secrets.token_urlsafe(nbytes))

    def register(self, value):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        if len(value) >= 8:
            self.values.append(value)
        return value

    def expect(self, value, name=None):
        """Writes value (exact bytes, no newline added) to a data file the step can compare
        the delivered value with; returns its path."""
        self._n += 1
        path = self.data / (name or f"expected-{self._n}")
        path.write_bytes(value.encode() if isinstance(value, str) else value)
        path.chmod(0o600)
        return path

    # ---- files ----

    def manifest(self, text, path=None):
        """Writes a manifest (dedented) to path, default proj/secrets.yaml; returns the path."""
        path = Path(path) if path else self.dir / "secrets.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def standard_manifest(self, secrets_block, backends=None, policy=None, path=None,
                          extra=None, protected_prod=False):
        """A version-1 manifest with environments dev (the default) and prod (protected only
        if asked: a protected environment needs every secret scoped and approved); the blocks
        are YAML mappings written at column 0, indented here."""
        def block(text):
            return textwrap.indent(textwrap.dedent(text).strip("\n"), "  ")
        parts = ["version: 1", "project: integration", "defaults:", "  environment: dev",
                 "environments:", "  dev: {}",
                 "  prod: {protected: true}" if protected_prod else "  prod: {}"]
        if backends:
            parts += ["backends:", block(backends)]
        parts += ["secrets:", block(secrets_block)]
        if policy:
            parts += ["policy:", block(policy)]
        if extra:
            parts.append(textwrap.dedent(extra).strip("\n"))
        return self.manifest("\n".join(parts) + "\n", path)

    def script(self, body, name=None, mode=0o755):
        """A /bin/sh step script in data/ with helpers: report KEY VALUE appends KEY=VALUE to
        data/report; same A B prints yes if files A and B have identical bytes."""
        self._n += 1
        path = self.data / (name or f"step-{self._n}.sh")
        prelude = textwrap.dedent(f"""\
            #!/bin/sh
            REPORT='{self.data}/report'
            DATA='{self.data}'
            report() {{ printf '%s=%s\\n' "$1" "$2" >> "$REPORT"; }}
            same() {{ if cmp -s "$1" "$2"; then echo yes; else echo no; fi; }}
            """)
        path.write_text(prelude + textwrap.dedent(body).lstrip("\n"))
        path.chmod(mode)
        return path

    def provider(self, values, name="provider.sh"):
        """An exec-backend provider: `provider PATH` prints the value stored for PATH plus a
        newline; unknown paths fail with a message on stderr. Returns its path."""
        store = self.data / "provider-values"
        store.mkdir(exist_ok=True)
        for ref, value in values.items():
            f = store / ref.replace("/", "_")
            f.write_bytes((value.encode() if isinstance(value, str) else value) + b"\n")
            f.chmod(0o600)
        path = self.data / name
        path.write_text(textwrap.dedent(f"""\
            #!/bin/sh
            f='{store}'/"$(printf %s "$1" | tr / _)"
            if [ ! -f "$f" ]; then echo "provider: no such secret: $1" >&2; exit 1; fi
            cat "$f"
            """))
        path.chmod(0o755)
        return path

    def report(self):
        """The KEY=VALUE lines step scripts appended to data/report, as a dict ({} if none).
        A SECRETS_DIR key is remembered so the leftover check can look for it."""
        path = self.data / "report"
        if not path.exists():
            return {}
        out = {}
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            out[key] = value
            if key == "SECRETS_DIR" and value:
                self.secrets_dirs.append(value)
        return out

    # ---- running ----

    def _env(self, env):
        merged = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        return merged

    def _argv(self, args, prefix):
        return [*(prefix or []), str(self.bin), *map(str, args)]

    def run(self, *args, env=None, cwd=None, input=None, timeout=60, binary=False,
            prefix=None):
        """Runs secrets-run ARGS...; env values of None unset a variable. stdin is /dev/null
        unless input (bytes or str) is given. Returns a Result."""
        if isinstance(input, str):
            input = input.encode()
        started = time.monotonic()
        popen = subprocess.Popen(
            self._argv(args, prefix), cwd=str(cwd or self.dir), env=self._env(env),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return self._finish(popen, timeout, binary, started, input)

    def spawn(self, *args, env=None, cwd=None, binary=False, prefix=None):
        """Starts secrets-run ARGS... in the background; .wait() returns the Result."""
        popen = subprocess.Popen(
            self._argv(args, prefix), cwd=str(cwd or self.dir), env=self._env(env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return Running(self, popen, binary)

    def _finish(self, popen, timeout, binary, started, input=None):
        try:
            out, err = popen.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            out, err = popen.communicate()
            self.outputs.append((out, err))
            pytest.fail(f"secrets-run did not finish within {timeout} s; "
                        f"stderr: {err[-2000:]!r}")
        elapsed = time.monotonic() - started
        self.outputs.append((out, err))
        if not binary:
            out = out.decode("utf-8", "surrogateescape")
            err = err.decode("utf-8", "surrogateescape")
        return Result(popen.returncode, out, err, elapsed)

    # ---- guards ----

    def leaked(self):
        """Indices of registered values that appear in any captured output."""
        bad = set()
        for out, err in self.outputs:
            for i, value in enumerate(self.values):
                v = value.encode("utf-8", "surrogateescape")
                if v in out or v in err:
                    bad.add(i)
        return sorted(bad)


@pytest.fixture(scope="session")
def secrets_run_bin():
    """Path of the binary under test: $SECRETS_RUN_BIN, else ../build/agent/secrets-run."""
    path = Path(os.environ.get("SECRETS_RUN_BIN") or DEFAULT_BIN)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"secrets-run binary not found at {path} (set SECRETS_RUN_BIN)")
    return path.resolve()


@pytest.fixture(scope="session")
def project_version():
    text = (HERE.parent / "meson.build").read_text()
    m = re.search(r"version\s*:\s*'([^']+)'", text)
    return m.group(1) if m else None


def _private_runtime_dir():
    """A 0700 directory on /dev/shm to serve as this test's XDG_RUNTIME_DIR, so per-run
    secrets directories land where the test can watch them; None if /dev/shm is no tmpfs."""
    if not os.path.isdir("/dev/shm") or fs_type("/dev/shm") != "tmpfs":
        return None
    return Path(tempfile.mkdtemp(prefix="sr-it-", dir="/dev/shm"))


def _entries(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


@pytest.fixture
def proj(tmp_path, secrets_run_bin):
    runtime = _private_runtime_dir()
    project = Project(tmp_path, secrets_run_bin, runtime)
    yield project
    try:
        leaked = project.leaked()
        assert not leaked, (
            f"{len(leaked)} generated secret value(s) (#{leaked} in registration order) "
            "appeared in secrets-run's stdout/stderr")
        project.report()   # picks up a SECRETS_DIR the step reported, if any
        left = [d for d in project.secrets_dirs if os.path.lexists(d)]
        assert not left, f"per-run secrets directories left after the run: {left}"
        if runtime:
            base = runtime / "secrets-run"
            dirs = [e for e in _entries(base) if (base / e).is_dir()]
            assert not dirs, f"leftover secrets directories under {base}: {dirs}"
    finally:
        _kill_survivors(project)
        if runtime:
            shutil.rmtree(runtime, ignore_errors=True)


def _kill_survivors(project):
    """Kills, by pid, processes this test started that outlived it (a failing test must not
    leave a step looping): those whose command line carries the test's data path or a tag."""
    for tag in project.tags:
        for pid in processes_with_arg(tag):
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass



# ---- Vault test double (integration/vault_server.py; it follows the documented samples in
# /work/shared/vault-api, it is not Vault) ----

class VaultFixture:
    """What the `vault` fixture yields: the running VaultServer (its methods are reachable
    here too: kv2_put, kv2_delete, kv2_destroy, kv2_set_created_time, kv1_put, add_approle,
    add_jwt_role, add_db_role, create_token, token_info, lease, active_leases, fault,
    clear_faults, refuse_connections, accept_connections, requests, clear_log, jwt,
    secret_values, tokens_issued, connections, health, ...)
    plus the TLS files and the credentials seeded for every test:

      addr, ca_path, wrong_ca_path, root_token, jwt_key,
      approle_role_id, approle_secret_id   (role "ci" on auth/approle),
      jwt_role = "ci", jwt_audience        (role on auth/jwt, HS256 signed with jwt_key),
      db_role = "app"                      (database/creds/app: 3 s TTL, 30 s max),
      secret values are generated at test time and never printed.

    create_token() here gives tokens policies default and "ci", which grants
    sys/leases/revoke and pki/revoke (Vault's default policy does not:
    vault/policy/policy_store.go); pass
    policies=("default",) for a token with the default policy alone."""

    def __init__(self, server, ca_path, wrong_ca_path):
        self.server = server
        self.ca_path = str(ca_path) if ca_path else None
        self.wrong_ca_path = str(wrong_ca_path) if wrong_ca_path else None
        self.root_token = server.root_token
        self.jwt_key = server.jwt_key
        self.approle_role_id, self.approle_secret_id = server.add_approle("ci")
        self.jwt_role = "ci"
        self.jwt_audience = "https://vault.secrets-run.test"
        server.add_jwt_role(self.jwt_role, [self.jwt_audience])
        self.db_role = "app"
        server.add_db_role(self.db_role, ttl=3, max_ttl=30)
        server.add_policy("ci", ["sys/leases/revoke", "pki/revoke"])

    def create_token(self, policies=("default", "ci"), **kw):
        return self.server.create_token(policies=policies, **kw)

    @property
    def addr(self):
        return self.server.addr

    @property
    def log(self):
        return self.server.requests()

    def __getattr__(self, name):
        return getattr(self.server, name)

    def __repr__(self):
        return f"<VaultFixture {self.addr}>"


@pytest.fixture
def vault_factory(tmp_path):
    """vault_factory(tls=True, namespace=None) starts another Vault test double (fresh CA,
    root token, JWT key) and returns a VaultFixture; all are stopped after the test."""
    started = []

    def make(tls=True, namespace=None):
        from vault_server import VaultServer, make_test_pki
        ca = wrong_ca = None
        tls_files = wrong_files = None
        if tls:
            d = tmp_path / f"vault-pki-{len(started)}"
            ca, cert, key = make_test_pki(d, "vault")
            wrong_ca, wcert, wkey = make_test_pki(d, "other")
            tls_files, wrong_files = (cert, key), (wcert, wkey)
        server = VaultServer(secrets.token_urlsafe(24), tls=tls_files, wrong_tls=wrong_files,
                             namespace=namespace)
        server.start()
        started.append(server)
        return VaultFixture(server, ca, wrong_ca)

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def vault(vault_factory):
    """A Vault test double over HTTPS on 127.0.0.1 (random port) with a fresh CA and root
    token, KV v2 at secret/, KV v1 at kv/, AppRole and JWT roles "ci", database role "app"."""
    return vault_factory()
