"""The bash and zsh completions (packaging/completion/), in real shells: the bash function
called with the words readline makes (an option's "=" split off, as the default
COMP_WORDBREAKS does), and both shells driven interactively on a terminal, a TAB typed and the
completed line read back: sub-commands, option values (--opt value and --opt=value), the
command of `run`, and the manifest's secret, environment and stage names. Per sub-command the
bash options are the set `secrets-run COMMAND --help` prints."""

import os
import pty
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASH_COMPLETION = ROOT / "packaging" / "completion" / "secrets-run.bash"
ZSH_COMPLETION = ROOT / "packaging" / "completion" / "_secrets-run"

MANIFEST = """\
version: 1
project: demo
defaults: {environment: dev, stage: local}
environments: {dev: {}, staging: {}, prod: {protected: true}}
secrets:
  DB_PASSWORD:
    from: "ci:DB_PASSWORD"
    owner: team-db
  NPM_TOKEN: {from: "ci:NPM_TOKEN", owner: team-web}
  # a comment between keys
  TEST_DB_PASSWORD:
    generate: {length: 32}
    owner: team-db
    environments: [staging, "prod"]
    stages:
      - test
      - deploy
  PUBLISH_KEY: {from: "ci:PUBLISH_KEY", owner: team-web, stages: [publish]}
policy:
  on_leak: fail
"""
NAMES = ["DB_PASSWORD", "NPM_TOKEN", "PUBLISH_KEY", "TEST_DB_PASSWORD"]
ENVIRONMENTS = ["dev", "prod", "staging"]
STAGES = ["deploy", "local", "publish", "test"]


def complete(words, cwd, env=None):
    """COMPREPLY for the command line `words`, the cursor on the last word."""
    script = (f"source {BASH_COMPLETION}\n"
              "COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 ))\n"
              "_secrets_run\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "bash", *words],
                       cwd=cwd, capture_output=True, text=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **(env or {})})
    assert r.returncode == 0 and not r.stderr, r
    return sorted(line for line in r.stdout.splitlines() if line)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "secrets.yaml").write_text(MANIFEST)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    return tmp_path


def test_subcommands(project):
    assert complete(["secrets-run", ""], project) == sorted(
        ["run", "check", "plan", "apply", "rotate", "redact", "scan", "store", "audit",
         "doctor", "init", "approve", "explain", "report", "version", "help"])
    assert "store" in complete(["secrets-run", "st"], project)


@pytest.mark.parametrize("option,values", [
    ("--sandbox", ["auto", "off", "strict"]),
    ("--network", ["off", "on"]),
    ("--format", ["json", "text"]),
    ("--on-leak", ["fail", "warn"]),
    ("--tty", ["always", "auto", "never"]),
])
def test_option_values(project, option, values):
    assert complete(["secrets-run", option, ""], project) == values
    assert complete(["secrets-run", "run", "-e", "dev", option, ""], project) == values


def test_only_secret_names_from_the_manifest(project):
    assert complete(["secrets-run", "--only", ""], project) == NAMES
    assert complete(["secrets-run", "run", "--only", "N"], project) == ["NPM_TOKEN"]
    assert complete(["secrets-run", "--only", "NPM_TOKEN,D"], project) == ["NPM_TOKEN,DB_PASSWORD"]
    assert complete(["secrets-run", "--only=N"], project) == ["--only=NPM_TOKEN"]
    assert complete(["secrets-run", "--only", "=", "N"], project) == ["NPM_TOKEN"]
    # the nearest parent's manifest, as secrets-run finds it
    assert complete(["secrets-run", "--only", ""], project / "a" / "b") == NAMES


def test_environment_and_stage_names_from_the_manifest(project):
    assert complete(["secrets-run", "-e", ""], project) == ENVIRONMENTS
    assert complete(["secrets-run", "run", "--env", "st"], project) == ["staging"]
    assert complete(["secrets-run", "-s", ""], project) == STAGES
    assert complete(["secrets-run", "check", "--stage", "=", "p"], project) == ["publish"]
    assert complete(["secrets-run", "--stage=d"], project) == ["--stage=deploy"]


@pytest.mark.parametrize("words", [["--format", "=", ""], ["--format="]])
def test_option_equals_value(project, words):
    offered = complete(["secrets-run", *words], project)
    prefix = "" if "=" in words else "--format="
    assert offered == [prefix + "json", prefix + "text"]


def test_words_after_an_option_equals_value(project):
    # "--format = json" is one option and its value, not the command of run
    assert "check" in complete(["secrets-run", "--format", "=", "json", ""], project)
    assert "--sandbox" in complete(["secrets-run", "--format", "=", "json", "--sand"], project)
    assert complete(["secrets-run", "--format=json", "ls", "--sand"], project) == []


def test_manifest_named_on_the_line_or_in_the_environment(project, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    (other / "m.yaml").write_text("version: 1\nsecrets:\n    OTHER_ONE: {from: 'ci:X'}\n")
    assert complete(["secrets-run", "-f", str(other / "m.yaml"), "--only", ""], project) == ["OTHER_ONE"]
    assert complete(["secrets-run", "--only", ""], project,
                    {"SECRETS_RUN_MANIFEST": str(other / "m.yaml")}) == ["OTHER_ONE"]
    assert complete(["secrets-run", "--only", ""], other) == []   # no manifest: no names


@pytest.mark.parametrize("sub", ["get", "rm", "history", "rollback"])
def test_store_secret_names(project, sub):
    assert complete(["secrets-run", "store", sub, ""], project) == NAMES
    assert complete(["secrets-run", "store", ""], project) == sorted(
        ["init", "set", "get", "list", "rm", "history", "rollback", "export", "import"])


def test_command_of_run_keeps_its_own_options(project):
    # after the command, words are the command's, not secrets-run's
    assert complete(["secrets-run", "ls", "--sand"], project) == []
    assert "--sandbox" in complete(["secrets-run", "--sand"], project)


def _help_options(binary, cmd):
    r = subprocess.run([str(binary), cmd, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", r.stdout.split("Options:", 1)[1])))


@pytest.mark.parametrize("cmd", ["run", "check", "plan", "apply", "rotate", "redact", "scan",
                                 "store", "audit", "init", "approve", "explain", "report"])
def test_options_per_command_match_help(project, secrets_run_bin, cmd):
    offered = complete(["secrets-run", cmd, "-"], project)
    assert offered == _help_options(secrets_run_bin, cmd)


def test_zsh_completion_parses():
    assert shutil.which("zsh"), "zsh is not installed (packaging/install-deps.sh installs it)"
    r = subprocess.run(["zsh", "-n", str(ZSH_COMPLETION)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def interactive(shell, lines, cwd, path):
    """Types each line and a TAB into an interactive shell on a terminal, then Ctrl-A and
    `echo MARK:` before it, and returns the completed lines the echo printed."""
    if shell == "zsh":
        argv = ["zsh", "-f", "-i"]
        setup = (f"fpath=({ZSH_COMPLETION.parent} $fpath); autoload -Uz compinit; compinit -u -D; "
                 "PS1='$ '")
    else:
        argv = ["bash", "--norc", "--noprofile", "-i"]
        setup = f"source {BASH_COMPLETION}; bind 'set bell-style none'; PS1='$ '"
    env = {"PATH": path, "HOME": str(cwd), "TERM": "dumb", "LC_ALL": "C"}
    pid, fd = pty.fork()
    if pid == 0:     # the child: the shell, in the project
        try:
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    seen = b""

    def read_until(pattern, timeout=20):
        nonlocal seen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    return None
            m = re.search(pattern, seen)
            if m:
                return m
        return None

    results = []
    try:
        # the quotes keep the typed line from matching what echo prints
        os.write(fd, setup.encode() + b"\recho RE''ADY\r")
        assert read_until(rb"READY\r?\n"), seen
        for i, line in enumerate(lines):
            seen = b""
            mark = f"GOT{i}:".encode()
            os.write(fd, line.encode() + b"\t\x01echo " + mark[:2] + b"''" + mark[2:] + b"\r")
            m = read_until(re.escape(mark) + rb"(.*?)\r?\n")
            results.append(m.group(1).decode().strip() if m else f"(nothing: {seen[-300:]!r})")
            os.write(fd, b"\x15")
        os.write(fd, b"exit\r")
    finally:
        for _ in range(50):
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    return results


# typed, and what a TAB makes of it (each completion unique, so it is inserted)
TYPED = [
    ("secrets-run chec", "secrets-run check"),
    ("secrets-run -e sta", "secrets-run -e staging"),
    ("secrets-run --env=sta", "secrets-run --env=staging"),
    ("secrets-run run -s dep", "secrets-run run -s deploy"),
    ("secrets-run --stage=pub", "secrets-run --stage=publish"),
    ("secrets-run --only NPM", "secrets-run --only NPM_TOKEN"),
    ("secrets-run --only=PUB", "secrets-run --only=PUBLISH_KEY"),
    ("secrets-run --format=js", "secrets-run --format=json"),
    ("secrets-run run -e prod --sandbox=str", "secrets-run run -e prod --sandbox=strict"),
    ("secrets-run rotate TEST_", "secrets-run rotate TEST_DB_PASSWORD"),
    # the command to run, from $PATH (zsh's $commands, which a local array once hid)
    ("secrets-run run zzsrtoo", "secrets-run run zzsrtool"),
    ("secrets-run -e dev -- zzsrtoo", "secrets-run -e dev -- zzsrtool"),
]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_in_an_interactive_shell(project, shell):
    assert shutil.which(shell), f"{shell} is not installed (packaging/install-deps.sh installs it)"
    bindir = project / "bin"
    bindir.mkdir()
    (bindir / "zzsrtool").write_text("#!/bin/sh\n")
    (bindir / "zzsrtool").chmod(0o755)
    got = interactive(shell, [typed for typed, _ in TYPED], project, f"{bindir}:/usr/bin:/bin")
    want = [done for _, done in TYPED]
    assert got == want
