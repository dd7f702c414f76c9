"""Small helpers shared by the integration tests and their fixtures."""

import os
import subprocess
import time


def fs_type(path):
    """The file system type of path as stat(1) names it ("tmpfs", "ext2/ext3", ...)."""
    r = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def wait_for(predicate, timeout=10.0, interval=0.05):
    """Polls predicate until it is true or timeout seconds have passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def processes_with_arg(needle):
    """PIDs of live (not zombie) processes whose command line contains needle."""
    found = []
    needle_b = needle.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle_b in cmdline and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found
