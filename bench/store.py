#!/usr/bin/python3
"""bench/store: what the embedded store costs a run.

Median wall time of
  secrets-run --dry-run  with 10 `local:` secrets from a store holding 1,000 secrets
  secrets-run --dry-run  with 10 generated secrets (the baseline: no store)
and their difference: opening (read + decrypt + parse) the store and fetching 10 values.
Values are random, made here, in a temporary directory removed at the end; the key is passed
in $SECRETS_RUN_STORE_KEY. Prints figures; never fails on the < 5 ms target.

usage: bench/store.py [BUILD_DIR] [RUNS]   (default build, 200)
"""
import base64
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
binary = os.path.abspath(os.path.join(build, "agent", "secrets-run"))
if not os.access(binary, os.X_OK):
    sys.exit(f"bench/store: no {binary}: build first (meson setup {build} && ninja -C {build})")

work = tempfile.mkdtemp(prefix="secrets-run-bench-")
env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETS_RUN_")}
env.update(XDG_CONFIG_HOME=os.path.join(work, "config"),
           SECRETS_RUN_STORE_KEY=base64.b64encode(secrets.token_bytes(32)).decode())
store = os.path.join(work, ".secrets-run", "store")


def sr(*args, input=None):
    r = subprocess.run([binary, *args], cwd=work, env=env, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"bench/store: secrets-run {args[0]} failed ({r.returncode}): {r.stderr.decode()[-300:]}")


sr("store", "init", "--store", store)
t = time.perf_counter()
for i in range(1000):
    sr("store", "set", f"S{i}", "--store", store, input=secrets.token_urlsafe(32).encode())
fill_s = time.perf_counter() - t

header = "version: 1\ndefaults: {environment: dev}\npolicy: {require_owner: false}\n"
with_store = os.path.join(work, "store.yaml")
with open(with_store, "w") as f:
    f.write(header + "backends:\n  local: {type: file, path: .secrets-run/store}\nsecrets:\n")
    for i in range(0, 1000, 100):
        f.write(f"  S{i}: {{from: \"local:S{i}\"}}\n")
baseline = os.path.join(work, "generated.yaml")
with open(baseline, "w") as f:
    f.write(header + "secrets:\n")
    for i in range(10):
        f.write(f"  S{i}: {{generate: {{length: 32}}}}\n")


def measure(manifest):
    argv = [binary, "-f", manifest, "--sandbox", "off", "--dry-run"]
    subprocess.run(argv, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm up
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        walls.append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            sys.exit(f"bench/store: --dry-run failed ({r.returncode}): {r.stderr.decode()[-300:]}")
    return statistics.median(walls)


size = os.path.getsize(store)
stored = measure(with_store)
generated = measure(baseline)
shutil.rmtree(work)
print(f"bench/store: {runs} runs each, {os.cpu_count()} cores; store of 1,000 secrets = {size} bytes "
      f"(filled by 1,000 'store set' in {fill_s:.1f} s)")
print(f"{'case':44} {'median wall ms':>15}")
print(f"{'--dry-run, 10 local: secrets of 1,000':44} {stored:15.2f}")
print(f"{'--dry-run, 10 generated secrets (baseline)':44} {generated:15.2f}")
print(f"{'open the store + fetch 10 (difference)':44} {stored - generated:15.2f}")
print("target (< 5 ms):", "met" if stored - generated < 5 else "missed")
