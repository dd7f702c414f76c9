"""The bash completion (packaging/completion/secrets-run.bash), loaded into a real bash: the
sub-commands, option values, secret names read from a sample manifest, and, per sub-command,
the same option set that `secrets-run COMMAND --help` prints. The zsh completion is checked
for syntax with `zsh -n` (when zsh is installed)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASH_COMPLETION = ROOT / "packaging" / "completion" / "secrets-run.bash"
ZSH_COMPLETION = ROOT / "packaging" / "completion" / "_secrets-run"

MANIFEST = """\
version: 1
project: demo
secrets:
  DB_PASSWORD:
    from: "ci:DB_PASSWORD"
    owner: team-db
  NPM_TOKEN: {from: "ci:NPM_TOKEN", owner: team-web}
  # a comment between keys
  TEST_DB_PASSWORD:
    generate: {length: 32}
    owner: team-db
policy:
  on_leak: fail
"""
NAMES = ["DB_PASSWORD", "NPM_TOKEN", "TEST_DB_PASSWORD"]


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
         "doctor", "version", "help"])
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
    # the nearest parent's manifest, as secrets-run finds it
    assert complete(["secrets-run", "--only", ""], project / "a" / "b") == NAMES


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
                                 "store", "audit"])
def test_options_per_command_match_help(project, secrets_run_bin, cmd):
    offered = complete(["secrets-run", cmd, "-"], project)
    assert offered == _help_options(secrets_run_bin, cmd)


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_zsh_completion_parses():
    r = subprocess.run(["zsh", "-n", str(ZSH_COMPLETION)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
