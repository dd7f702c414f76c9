#!/usr/bin/python3
"""bench/vault: what fetching independent Vault paths concurrently saves.

Starts the Vault test double (integration/vault_server.py) over HTTPS on 127.0.0.1 with a
temporary CA (as the integration `vault` fixture does), seeds 100 KV v2 paths, adds 20 ms of
latency to every request, and times
  secrets-run --dry-run   with 100 vault: secrets, one per path   (concurrent, the default)
  the same with SECRETS_RUN_VAULT_SEQUENTIAL=1                    (one request at a time)
Median wall time of RUNS runs each, and the ratio. Prints figures; never fails on a threshold.

usage: bench/vault.py [BUILD_DIR] [RUNS]   (default build, 5)
"""
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "integration"))
from vault_server import VaultServer, make_test_pki  # noqa: E402

PATHS = 100
LATENCY_MS = 20

build = sys.argv[1] if len(sys.argv) > 1 else "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
binary = os.path.abspath(os.path.join(build, "agent", "secrets-run"))
if not os.access(binary, os.X_OK):
    sys.exit(f"bench/vault: no {binary}: build first (meson setup {build} && ninja -C {build})")

work = tempfile.mkdtemp(prefix="secrets-run-bench-")
ca, cert, key = make_test_pki(os.path.join(work, "pki"), "vault")
server = VaultServer(secrets.token_urlsafe(24), tls=(cert, key)).start()
try:
    for i in range(PATHS):
        server.kv2_put(f"bench/p{i}", {"k": secrets.token_urlsafe(24)})
    token = server.create_token()
    server.fault("latency", ms=LATENCY_MS)

    manifest = os.path.join(work, "secrets.yaml")
    with open(manifest, "w") as f:
        f.write("version: 1\ndefaults: {environment: dev}\nenvironments: {dev: {}}\n")
        f.write(f"backends:\n  v: {{type: vault, address: \"{server.addr}\", ca_cert: {ca}, "
                "timeout: 30s, auth: {method: token}}\n")
        f.write("secrets:\n")
        for i in range(PATHS):
            f.write(f"  S{i}: {{from: \"v:secret/data/bench/p{i}#k\", owner: bench}}\n")

    def measure(extra_env):
        env = {k: v for k, v in os.environ.items() if k != "SECRETS_RUN_VAULT_SEQUENTIAL"}
        env.update(VAULT_TOKEN=token, **extra_env)
        walls = []
        for _ in range(runs):
            server.clear_log()
            t = time.perf_counter()
            r = subprocess.run([binary, "-f", manifest, "--dry-run"], cwd=work, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            walls.append((time.perf_counter() - t) * 1000)
            if r.returncode != 0:
                sys.exit(f"bench/vault: secrets-run failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
            gets = len(server.requests(method="GET"))
            if gets != PATHS:
                sys.exit(f"bench/vault: expected {PATHS} GETs, saw {gets}")
        return statistics.median(walls)

    concurrent = measure({})
    sequential = measure({"SECRETS_RUN_VAULT_SEQUENTIAL": "1"})
finally:
    server.stop()
    shutil.rmtree(work, ignore_errors=True)

print(f"bench/vault: {PATHS} KV v2 paths, {LATENCY_MS} ms latency per request, HTTPS on 127.0.0.1, "
      f"median of {runs} runs of secrets-run --dry-run")
print(f"  concurrent (default)             {concurrent:8.1f} ms")
print(f"  SECRETS_RUN_VAULT_SEQUENTIAL=1   {sequential:8.1f} ms")
print(f"  ratio                            {sequential / concurrent:8.1f}x")
