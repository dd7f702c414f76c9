#!/usr/bin/python3
"""bench/leak_flood: a step that prints a secret on every one of 300,000 lines.

Median wall time and peak RSS (of secrets-run and its children) of
  secrets-run -- STEP   the step prints "line N token=VALUE" 300,000 times (300,000 leaks)
  secrets-run -- STEP   the same lines with a value that is not a secret (no leak)
  STEP                  the step alone, bare (the baseline of the output itself)
in one invocation, output to a file, and the ratio of the flood to the clean run. Leak reports
and audit records past the first 10 per secret, form and stream are counted, not written one
by one, so the flood should cost about what the clean run does. Prints figures; never fails
on a threshold.

usage: bench/leak_flood.py [BUILD_DIR] [RUNS] [LINES]   (default build, 5, 300000)
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
lines = int(sys.argv[3]) if len(sys.argv) > 3 else 300000
binary = os.path.abspath(os.path.join(build, "agent", "secrets-run"))
if not os.access(binary, os.X_OK):
    sys.exit(f"bench/leak_flood: no {binary}: build first (meson setup {build} && ninja -C {build})")

work = tempfile.mkdtemp(prefix="secrets-run-bench-")
with open(os.path.join(work, "secrets.yaml"), "w") as f:
    f.write("version: 1\ndefaults: {environment: dev}\nsecrets:\n"
            "  TOKEN: {generate: {length: 32}}\n"
            f"policy: {{audit_log: {work}/audit.jsonl}}\n")
# the same text either way: the value of $TOKEN_FILE, or a string of the same length that is
# not a secret (the clean run's and the bare run's)
step = os.path.join(work, "step.sh")
with open(step, "w") as f:
    f.write(f"""#!/bin/sh
if [ -n "$TOKEN_FILE" ] && [ -z "$CLEAN" ]; then v=$(cat "$TOKEN_FILE"); else v=notasecretnotasecretnotasecret12; fi
exec awk -v v="$v" 'BEGIN {{ for (i = 0; i < {lines}; i++) print "line " i " token=" v }}'
""")
os.chmod(step, 0o755)

cases = [
    (f"secrets-run, {lines} leaking lines", [binary, "--", step], {}),
    (f"secrets-run, {lines} clean lines", [binary, "--", step], {"CLEAN": "1"}),
    (f"bare step, {lines} lines", [step], {"CLEAN": "1"}),
]


def measure(argv, env):
    """(wall seconds, peak RSS in MiB of the process tree's largest member) of one run, output
    to a file."""
    with open(os.path.join(work, "out"), "wb") as o:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, cwd=work, env={**os.environ, **env}, stdout=o, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 123):
        sys.exit(f"bench/leak_flood: {argv[0]} exited {p.returncode}")
    return wall, usage.ru_maxrss / 1024


results = {}
for name, argv, env in cases:
    walls, rss = [], 0.0
    for _ in range(runs):
        w, r = measure(argv, env)
        walls.append(w)
        rss = max(rss, r)
    results[name] = (statistics.median(walls), rss)

print(f"bench/leak_flood: {runs} runs each, output to a file")
for name, (wall, rss) in results.items():
    print(f"  {name:<40} {wall * 1000:8.1f} ms   peak RSS {rss:6.1f} MiB")
flood, clean = results[cases[0][0]][0], results[cases[1][0]][0]
print(f"  flood / clean: {flood / clean:.2f}x")
