#!/usr/bin/python3
"""Counts test cases across meson build directories for tests/run-all.sh and CI.

For each BUILDDIR it reads meson-logs/testlog.json (one JSON object per test per line):
  * a test whose command has --junitxml=PATH (the pytest integration suite) is counted from
    that JUnit XML: tests, failures, errors, skipped;
  * any other test is TAP: "ok N" / "not ok N" lines of its stdout, "# SKIP" as skipped,
    "not ok ... # TODO" as skipped;
  * a test meson reports as failed (crash, timeout, sanitizer report at exit, bad plan) with no
    failed case of its own counts as one failure; a test with no cases counts as one result.
--failed-step NAME (repeatable) counts a build step that failed as one failure;
--failed-test-step BUILDDIR counts a failed `meson test` as one failure if no case of that
build was counted as failed (so a summary never says 0 failed when a step failed).
--tap FILE (repeatable) counts the TAP lines of a file a step wrote (the fuzz run, the .deb check); a missing
file, or one with no case, counts as one failure.

Per-build lines and the failed cases come first; the LAST line is
"N passed, N failed" (plus ", N skipped" if any). Exits 1 if anything failed, else 0.
"""

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

TAP_LINE = re.compile(r"^(not )?ok\b\s*(\d*)\s*-?\s*(.*)$")
FAILED_RESULTS = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS", "INTERRUPT"}


class Count:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures = []   # "where: case" strings

    def add(self, other):
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped
        self.failures += other.failures

    def text(self, always_skipped=False):
        s = f"{self.passed} passed, {self.failed} failed"
        if self.skipped or always_skipped:
            s += f", {self.skipped} skipped"
        return s


def junit_path(command):
    for arg in command or []:
        if isinstance(arg, str) and arg.startswith("--junitxml="):
            return Path(arg.split("=", 1)[1])
    return None


def count_junit(path, where):
    """Counts a pytest JUnit XML file; None if it is missing or unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    c = Count()
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    for suite in suites:
        tests = int(suite.get("tests", 0))
        failures = int(suite.get("failures", 0))
        errors = int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        c.passed += max(tests - failures - errors - skipped, 0)
        c.failed += failures + errors
        c.skipped += skipped
        for case in suite.iter("testcase"):
            bad = case.find("failure")
            kind = "failed"
            if bad is None:
                bad, kind = case.find("error"), "error"
            if bad is not None:
                name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
                c.failures.append(f"{where}: {name} ({kind})")
    return c


def count_tap(stdout, where):
    c = Count()
    cases = 0
    for line in (stdout or "").splitlines():
        m = TAP_LINE.match(line.strip())
        if not m:
            continue
        cases += 1
        not_ok, number, rest = m.groups()
        directive = rest.split("#", 1)[1].strip().upper() if "#" in rest else ""
        if directive.startswith("SKIP"):
            c.skipped += 1
        elif not_ok and directive.startswith("TODO"):
            c.skipped += 1
        elif not_ok:
            c.failed += 1
            c.failures.append(f"{where}: not ok {number} - {rest.split('#', 1)[0].strip()}")
        else:
            c.passed += 1
    return c, cases


def count_build(builddir):
    """Counts one build directory's test log; returns (Count, notes)."""
    total, notes = Count(), []
    log = Path(builddir) / "meson-logs" / "testlog.json"
    try:
        lines = log.read_text().splitlines()
    except OSError:
        notes.append(f"{builddir}: no test log ({log})")
        return total, notes
    for line in lines:
        if not line.strip():
            continue
        try:
            t = json.loads(line)
        except json.JSONDecodeError:
            notes.append(f"{builddir}: unreadable line in {log}")
            continue
        name = t.get("name", "?")
        result = t.get("result", "")
        where = f"{builddir}/{name}"
        junit = junit_path(t.get("command"))
        if junit is not None:
            c = count_junit(junit, where)
            if c is None:
                notes.append(f"{where}: no JUnit XML at {junit}")
                c, cases = Count(), 0
            else:
                cases = c.passed + c.failed + c.skipped
        else:
            c, cases = count_tap(t.get("stdout"), where)
        if result in FAILED_RESULTS and c.failed == 0:
            c.failed += 1
            c.failures.append(f"{where}: meson result {result} "
                              f"(exit status {t.get('returncode')})")
        elif cases == 0 and result not in FAILED_RESULTS:
            if result == "SKIP":
                c.skipped += 1
            else:
                c.passed += 1
        total.add(c)
    return total, notes


def count_tap_file(path):
    """Counts a TAP file written by a step outside meson."""
    try:
        text = Path(path).read_text()
    except OSError:
        text = ""
    c, cases = count_tap(text, path)
    if cases == 0:
        c.failed += 1
        c.failures.append(f"{path}: missing or without a TAP case")
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("builddirs", nargs="+")
    ap.add_argument("--failed-step", action="append", default=[],
                    help="a build step that failed (counts as one failure)")
    ap.add_argument("--failed-test-step", action="append", default=[], metavar="BUILDDIR",
                    help="a `meson test` run that failed")
    ap.add_argument("--tap", action="append", default=[], metavar="FILE",
                    help="a TAP file written by a step (counted like a test's output)")
    args = ap.parse_args()

    grand = Count()
    for builddir in args.builddirs:
        c, notes = count_build(builddir)
        for n in notes:
            print(f"tally: {n}")
        if builddir in args.failed_test_step and c.failed == 0:
            c.failed += 1
            c.failures.append(f"{builddir}: meson test failed")
        print(f"{builddir}: {c.text(always_skipped=True)}")
        grand.add(c)
    for path in args.tap:
        c = count_tap_file(path)
        print(f"{path}: {c.text(always_skipped=True)}")
        grand.add(c)
    for step in args.failed_step:
        grand.failed += 1
        grand.failures.append(f"step failed: {step}")
    if grand.failures:
        print("failed:")
        for f in grand.failures:
            print(f"  {f}")
    sys.stdout.flush()
    print(grand.text())
    return 1 if grand.failed else 0


if __name__ == "__main__":
    sys.exit(main())
