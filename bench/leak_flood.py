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


TIME = "/usr/bin/time"   # GNU time: its own small fork is what the child's peak RSS starts from


def measure(argv, env):
    """(wall seconds, peak RSS in MiB of the process tree's largest member, or None) of one
    run, output to a file. The peak comes from GNU time when it is installed: a child forked
    from this Python process would start its count at the interpreter's size."""
    rss_file = os.path.join(work, "rss")
    wrap = [TIME, "-f", "%M", "-o", rss_file] if os.access(TIME, os.X_OK) else []
    with open(os.path.join(work, "out"), "wb") as o:
        t0 = time.monotonic()
        p = subprocess.run(wrap + argv, cwd=work, env={**os.environ, **env}, stdout=o, stderr=subprocess.DEVNULL)
        wall = time.monotonic() - t0
    if p.returncode not in (0, 123):
        sys.exit(f"bench/leak_flood: {argv[0]} exited {p.returncode}")
    if not wrap:
        return wall, None
    with open(rss_file) as f:
        return wall, int(f.read().split()[-1]) / 1024


results = {}
for name, argv, env in cases:
    walls, rss = [], None
    for _ in range(runs):
        w, r = measure(argv, env)
        walls.append(w)
        rss = r if rss is None or (r is not None and r > rss) else rss
    results[name] = (statistics.median(walls), rss)

print(f"bench/leak_flood: {runs} runs each, output to a file")
for name, (wall, rss) in results.items():
    peak = f"{rss:6.1f} MiB" if rss is not None else "n/a (install GNU time)"
    print(f"  {name:<40} {wall * 1000:8.1f} ms   peak RSS {peak}")
flood, clean = results[cases[0][0]][0], results[cases[1][0]][0]
print(f"  flood / clean: {flood / clean:.2f}x")
