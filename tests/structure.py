#!/usr/bin/python3
"""The structure rules of DESIGN §10 and STYLE, checked on the source tree (TAP, one case each).

- Dependencies flow one way: agent -> {sandbox, redact, backends} -> common. A module includes
  only its own headers and those of the modules below it; a private header (*-private.h) only
  from its own directory.
- One fork primitive: no process is started outside sandbox/.
- Backends and redact/ do not print: agent/ talks to people, so every message passes one place.
- agent/run.c stays the list of phases (under 400 lines); no function in agent/ over 100 lines.

Usage: structure.py SOURCE_ROOT
"""

import re
import sys
from pathlib import Path

ALLOWED = {
    "common": {"common"},
    "redact": {"redact", "common"},
    "backends": {"backends", "common"},
    "sandbox": {"sandbox", "common"},
    "agent": {"agent", "sandbox", "redact", "backends", "common"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
FORK = re.compile(r"\b(fork|vfork|clone|clone3|posix_spawnp?)\s*\(|SYS_clone")
PRINT = re.compile(r"\b(fprintf\s*\(\s*stderr|perror\s*\(|printf\s*\(|log_(error|warning|notice|info)\s*\()")
MAX_FUNCTION_LINES = 100
MAX_RUN_C_LINES = 400


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def sources(root, module):
    return sorted(p for p in (root / module).glob("*.[ch]"))


def header_owner(root, name):
    """The module whose directory holds header `name`, or None (a system or generated one)."""
    owners = [m for m in ALLOWED if (root / m / name).exists()]
    return owners[0] if owners else None


def check_layering(root):
    problems = []
    for module, allowed in ALLOWED.items():
        for path in sources(root, module):
            for name in INCLUDE.findall(path.read_text()):
                owner = header_owner(root, name)
                if owner is None:
                    continue
                if owner not in allowed:
                    problems.append(f"{path.relative_to(root)} includes {owner}/{name}")
                elif name.endswith("-private.h") and owner != module:
                    problems.append(f"{path.relative_to(root)} includes {owner}'s private {name}")
    return problems


def check_pattern(root, modules, pattern, what):
    problems = []
    for module in modules:
        for path in sources(root, module):
            for n, line in enumerate(strip_comments(path.read_text()).split("\n"), 1):
                if pattern.search(line):
                    problems.append(f"{path.relative_to(root)}:{n}: {what}: {line.strip()}")
    return problems


def functions(text):
    """(name, first line, length) of each top-level function definition."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(?!typedef|struct\s+\w+\s*\{|enum|union|#)[A-Za-z_][^=;]*?\b(\w+)\s*\(", line)
        if not m or line.rstrip().endswith(";"):
            i += 1
            continue
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith("{"):
            if lines[j].rstrip().endswith(";"):
                break
            j += 1
        if j >= len(lines) or not lines[j].rstrip().endswith("{"):
            i = j + 1
            continue
        k = j + 1
        while k < len(lines) and lines[k] != "}":
            k += 1
        yield m.group(1), i + 1, k - i + 1
        i = k + 1


def check_function_lengths(root):
    problems = []
    for path in sources(root, "agent"):
        if path.suffix != ".c":
            continue
        for name, line, length in functions(strip_comments(path.read_text())):
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{path.relative_to(root)}:{line}: {name} is {length} lines")
    return problems


def check_run_c(root):
    n = len((root / "agent" / "run.c").read_text().split("\n")) - 1
    return [f"agent/run.c is {n} lines"] if n >= MAX_RUN_C_LINES else []


def main():
    root = Path(sys.argv[1]).resolve()
    cases = [
        ("layering: agent -> {sandbox, redact, backends} -> common; private headers stay home",
         check_layering(root)),
        ("one fork primitive: no process is started outside sandbox/",
         check_pattern(root, ["agent", "backends", "redact", "common"], FORK, "starts a process")),
        ("backends/ and redact/ do not print",
         check_pattern(root, ["backends", "redact"], PRINT, "prints")),
        (f"no function in agent/ over {MAX_FUNCTION_LINES} lines", check_function_lengths(root)),
        (f"agent/run.c under {MAX_RUN_C_LINES} lines", check_run_c(root)),
    ]
    print(f"1..{len(cases)}")
    failed = 0
    for n, (name, problems) in enumerate(cases, 1):
        print(f"{'not ok' if problems else 'ok'} {n} - {name}")
        for p in problems:
            print(f"# {p}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
