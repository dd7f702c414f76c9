#!/usr/bin/python3
"""bench/startup: what the sandbox costs a step that does nothing.

Median wall time and mean CPU time (user+sys of the whole process tree) of
  secrets-run --sandbox strict -- /bin/true     with 10 generated secrets
  secrets-run --sandbox off    -- /bin/true     the same without the sandbox
  bwrap --unshare-all --dev-bind / / /bin/true  bubblewrap sandboxing alone
  /bin/true                                      the baseline
in one invocation, and the ratios. Prints figures; never fails on a threshold.

usage: bench/startup.py [BUILD_DIR] [RUNS]   (default build, 200)
"""
import os
import resource
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
    sys.exit(f"bench/startup: no {binary}: build first (meson setup {build} && ninja -C {build})")

work = tempfile.mkdtemp(prefix="secrets-run-bench-")
manifest = os.path.join(work, "secrets.yaml")
with open(manifest, "w") as f:
    f.write("version: 1\ndefaults: {environment: dev}\nsecrets:\n")
    for i in range(10):
        f.write(f"  S{i}: {{generate: {{length: 32}}}}\n")

# the audit log goes where a user's would (the state directory, on disk); a second strict row
# puts it on tmpfs, where fsync costs nothing, to show what the audit trail's flushes cost
shm_log = os.path.join(tempfile.mkdtemp(prefix="secrets-run-bench-", dir="/dev/shm"), "audit.jsonl")
state = os.path.join(work, "state")
cases = [
    ("secrets-run strict, 10 secrets", [binary, "-f", manifest, "--sandbox", "strict", "--", "/bin/true"], {}),
    ("  same, audit log on tmpfs", [binary, "-f", manifest, "--sandbox", "strict", "--", "/bin/true"],
     {"SECRETS_RUN_AUDIT_LOG": shm_log}),
    ("secrets-run off, 10 secrets", [binary, "-f", manifest, "--sandbox", "off", "--", "/bin/true"], {}),
]
if shutil.which("bwrap"):
    cases.append(("bwrap --unshare-all", ["bwrap", "--unshare-all", "--dev-bind", "/", "/", "/bin/true"], {}))
cases.append(("/bin/true", ["/bin/true"], {}))


def measure(argv, env):
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        walls.append((time.perf_counter() - t) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
        if r.returncode != 0:
            sys.exit(f"bench/startup: {argv[0]} failed ({r.returncode}): {r.stderr.decode()[-300:]}")
    return statistics.median(walls), statistics.mean(cpus)


results = {}
for name, argv, extra in cases:
    env = dict(os.environ, XDG_STATE_HOME=state, **extra)
    subprocess.run(argv, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)   # warm up
    results[name] = measure(argv, env)
shutil.rmtree(work)
shutil.rmtree(os.path.dirname(shm_log))

base = results.get("bwrap --unshare-all")
print(f"bench/startup: {runs} runs each, {os.cpu_count()} cores")
print(f"{'case':34} {'median wall ms':>15} {'mean CPU ms':>12} {'wall vs bwrap':>14}")
for name, (wall, cpu) in results.items():
    ratio = f"{wall / base[0]:.2f}x" if base else "-"
    print(f"{name:34} {wall:15.2f} {cpu:12.2f} {ratio:>14}")
if base:
    strict = results["secrets-run strict, 10 secrets"][0]
    print("target (strict no slower than bubblewrap alone):", "met" if strict <= base[0] else "missed")
