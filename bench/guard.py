#!/usr/bin/python3
"""bench/guard: what the output guard costs a real step.

1. A real build: this project's own source (git archive HEAD) configured and built with
   meson + ninja, under `secrets-run --sandbox strict` with the guard and with --guard off,
   rounds alternating so drift hits both, plus the bare build as the baseline.
2. 100,000 small file writes (one Python process creating and writing 100,000 files), with
   the guard and without: the guard's cost per file written, its scan after the step included.

Prints medians and ratios in one invocation; never fails on a threshold.

usage: bench/guard.py [BUILD_DIR] [ROUNDS]   (default build, 3)
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
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
binary = os.path.abspath(os.path.join(build, "agent", "secrets-run"))
source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.access(binary, os.X_OK):
    sys.exit(f"bench/guard: no {binary}: build first (meson setup {build} && ninja -C {build})")

work = tempfile.mkdtemp(prefix="secrets-run-bench-guard-")
tree = os.path.join(work, "src")
os.mkdir(tree)
archive = subprocess.run(["git", "-C", source, "archive", "HEAD"], check=True, capture_output=True).stdout
subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
with open(os.path.join(tree, "secrets.yaml"), "w") as f:
    f.write("version: 1\ndefaults: {environment: dev}\nsecrets:\n")
    for i in range(10):
        f.write(f"  S{i}: {{generate: {{length: 32}}}}\n")
env = dict(os.environ, SECRETS_RUN_AUDIT_LOG=os.path.join(work, "audit.jsonl"))

BUILD_STEP = "rm -rf b && meson setup b -Dintegration=false >/dev/null && ninja -C b >/dev/null"
# the small writes go to a tmpfs where there is one: what is measured is the guard, not the disk
shm = tempfile.mkdtemp(prefix="secrets-run-bench-guard-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
WRITES_STEP = (f"rm -rf {shm}/many && mkdir {shm}/many && /usr/bin/python3 -c '"
               "import os\nfor i in range(100000):\n"
               f"    with open(f\"{shm}/many/{{i}}\", \"w\") as f: f.write(\"x\")'")


def timed(argv):
    """(wall seconds, CPU seconds of the whole process tree): CPU time is what the guard costs
    whatever else the machine is doing; wall time is what a person waits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(argv, cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"bench/guard: {argv} exited {r.returncode}:\n{r.stderr[-2000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def wrapped(step, guard):
    return [binary, "--sandbox", "strict", "--guard", guard, "--", "sh", "-c", step]


def series(cases, n):
    """Median (wall, CPU) seconds of each case, the cases interleaved round by round."""
    times = {name: [] for name, _ in cases}
    for i in range(n):
        for name, argv in cases:
            times[name].append(timed(argv))
        print(f"  round {i + 1}/{n}: " + ", ".join(f"{k} {v[-1][0]:.2f} s ({v[-1][1]:.2f} CPU)"
                                                  for k, v in times.items()), file=sys.stderr, flush=True)
    return {name: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for name, v in times.items()}


print(f"bench/guard: {os.cpu_count()} cores, {rounds} rounds", file=sys.stderr)
timed(["sh", "-c", BUILD_STEP])   # warm the page cache
build_times = series([("guard on", wrapped(BUILD_STEP, "on")), ("guard off", wrapped(BUILD_STEP, "off")),
                      ("bare", ["sh", "-c", BUILD_STEP])], rounds)
write_times = series([("guard on", wrapped(WRITES_STEP, "on")), ("guard off", wrapped(WRITES_STEP, "off")),
                      ("bare", ["sh", "-c", WRITES_STEP])], rounds)

print(f"{'case':<58}{'wall s':>8}{'vs off':>8}{'CPU s':>8}{'vs off':>8}{'vs bare':>8}")
for title, t in (("meson setup + ninja (this project), strict", build_times),
                 ("100,000 small file writes, strict", write_times)):
    for name in ("guard on", "guard off", "bare"):
        (w, c), (w_off, c_off), (_, c_bare) = t[name], t["guard off"], t["bare"]
        print(f"{title + ', ' + name:<58}{w:>8.2f}{w / w_off:>7.3f}x{c:>8.2f}{c / c_off:>7.3f}x{c / c_bare:>7.3f}x")
extra = (write_times["guard on"][1] - write_times["guard off"][1]) / 100000 * 1e6
print(f"guard CPU cost per file written (opened, recorded, scanned after): {extra:.1f} us")
shutil.rmtree(work, ignore_errors=True)
shutil.rmtree(shm, ignore_errors=True)
