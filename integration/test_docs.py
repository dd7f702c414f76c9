"""The man pages agree with the binary: every long option that `secrets-run COMMAND --help`
prints, for every command, is in secrets-run(1)'s scdoc source, and every long option the man
page names is one --help prints (so neither can drift from agent/main.c's option table).
Also: every sub-command is documented, and the rendered pages exist in the build tree."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAN1 = ROOT / "packaging" / "man" / "secrets-run.1.scd"
MAN5 = ROOT / "packaging" / "man" / "secrets.yaml.5.scd"
LONG_OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def _help(binary, *args):
    r = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def _commands(binary):
    text = _help(binary, "--help")
    section = text.split("Commands:", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in section.splitlines() if line.strip()]
    assert "run" in names and "store" in names, text
    return names


def _help_options(binary):
    """{option: [commands whose --help prints it]}, the top-level help included."""
    found = {}
    for cmd in [None] + _commands(binary):
        text = _help(binary, *([cmd, "--help"] if cmd else ["--help"]))
        for opt in LONG_OPTION.findall(text):
            found.setdefault(opt, []).append(cmd or "(top level)")
    return found


def test_help_options_are_in_the_man_page(secrets_run_bin):
    man = set(LONG_OPTION.findall(MAN1.read_text()))
    missing = {o: cmds for o, cmds in _help_options(secrets_run_bin).items() if o not in man}
    assert not missing, f"options in --help but not in {MAN1.name}: {missing}"


def test_man_page_options_are_in_help(secrets_run_bin):
    helped = _help_options(secrets_run_bin)
    extra = sorted(set(LONG_OPTION.findall(MAN1.read_text())) - set(helped))
    assert not extra, f"options in {MAN1.name} that no --help prints: {extra}"


def test_every_command_is_documented(secrets_run_bin):
    text = MAN1.read_text()
    commands = text.split("# COMMANDS", 1)[1].split("\n# ", 1)[0]
    for cmd in _commands(secrets_run_bin):
        assert re.search(rf"^\*{re.escape(cmd)}[* ]", commands, re.M), \
            f"sub-command {cmd} has no entry under COMMANDS in {MAN1.name}"


def test_environment_variables_are_documented():
    text = MAN1.read_text()
    for var in ["SECRETS_RUN_MANIFEST", "SECRETS_RUN_ENV", "SECRETS_RUN_STAGE",
                "SECRETS_RUN_STORE_KEY", "SECRETS_RUN_AUDIT_LOG", "SECRETS_RUN_AUDIT_KEY"]:
        assert f"*{var}*" in text, var


def test_manifest_page_covers_the_top_level_keys():
    text = MAN5.read_text()
    for key in ["version", "project", "defaults", "backends", "environments", "secrets", "policy"]:
        assert f"*{key}*" in text, key


@pytest.mark.skipif(not shutil.which("scdoc"), reason="scdoc is not installed")
def test_pages_are_rendered(secrets_run_bin):
    build = secrets_run_bin.parent.parent / "packaging"
    if not build.is_dir():
        pytest.skip(f"{secrets_run_bin} is not in a meson build tree")
    for page, source in [("secrets-run.1", MAN1), ("secrets.yaml.5", MAN5)]:
        rendered = build / page
        assert rendered.is_file(), f"{rendered} was not generated"
        assert ".TH" in rendered.read_text(), rendered
