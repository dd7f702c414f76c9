"""The shape of the CI templates, with Debian's python3-yaml: the GitHub composite action
(packaging/github-action/action.yml), the GitLab template (packaging/gitlab/
secrets-run.gitlab-ci.yml) and their examples. Required keys, every step runnable (`run` with
`shell`, or `uses`), every `inputs.X` an input, the examples' `with:` keys inputs of the
action, and every shell script in them accepted by `bash -n` / `sh -n`."""

import re
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "packaging" / "github-action" / "action.yml"
GITLAB = ROOT / "packaging" / "gitlab" / "secrets-run.gitlab-ci.yml"
GH_EXAMPLE = ROOT / "examples" / "github-workflow.yml"
GL_EXAMPLE = ROOT / "examples" / "gitlab-ci.yml"
ACTION_USE = "/secrets-run/packaging/github-action@"


def load(path):
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    return doc


def shell_ok(shell, script):
    r = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True)
    assert r.returncode == 0, f"{shell} -n: {r.stderr}\n{script}"


def test_action_shape():
    a = load(ACTION)
    assert a.get("name") and a.get("description")
    assert a["runs"]["using"] == "composite"
    inputs = a["inputs"]
    for name in ["command", "manifest", "environment", "sandbox", "version"]:
        assert name in inputs and inputs[name].get("description"), name
    assert inputs["command"].get("required") is True
    for name, spec in inputs.items():
        assert spec.get("required") or "default" in spec, f"optional input {name} has no default"
    steps = a["runs"]["steps"]
    assert steps
    for step in steps:
        assert ("run" in step) != ("uses" in step), step
        if "run" in step:
            assert step.get("shell") == "bash", f"a composite run step needs a shell: {step}"
            shell_ok("bash", step["run"])
    text = ACTION.read_text()
    for used in set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", text)):
        assert used in inputs, f"inputs.{used} is referenced but not declared"
    for out in a.get("outputs", {}).values():
        step_id = re.search(r"steps\.([\w-]+)\.", out["value"]).group(1)
        assert step_id in {s.get("id") for s in steps}, out
    # the OIDC permission Vault JWT auth needs is documented
    assert "id-token: write" in text


def test_action_inputs_are_not_expanded_in_scripts():
    # inputs reach the scripts through env:, never pasted into the script text (injection)
    for step in load(ACTION)["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")


def test_github_example():
    wf = load(GH_EXAMPLE)
    assert wf.get(True) or wf.get("on"), "no trigger"   # YAML 1.1 reads `on` as true
    inputs = load(ACTION)["inputs"]
    required = {n for n, s in inputs.items() if s.get("required")}
    used_action = False
    for job_name, job in wf["jobs"].items():
        assert job.get("runs-on") and job.get("steps"), job_name
        for step in job["steps"]:
            assert ("run" in step) != ("uses" in step), step
            if ACTION_USE in step.get("uses", ""):
                used_action = True
                given = set(step.get("with", {}))
                assert given <= set(inputs), f"{job_name}: unknown inputs {given - set(inputs)}"
                assert required <= given, f"{job_name}: missing inputs {required - given}"
                if "vault-audience" in given:
                    perms = job.get("permissions") or wf.get("permissions") or {}
                    assert perms.get("id-token") == "write", job_name
    assert used_action
    runs = [step["run"] for job in wf["jobs"].values() for step in job["steps"] if "run" in step]
    assert any(r.startswith("secrets-run plan") for r in runs), "the scheduled drift report"


def test_gitlab_template():
    t = load(GITLAB)
    job = t[".secrets-run"]
    assert job.get("script"), "the template has no script"
    assert job["id_tokens"]["VAULT_ID_TOKEN"]["aud"]
    assert "SECRETS_RUN_COMMAND" in job["variables"]
    for key in ["before_script", "script"]:
        for line in job.get(key, []):
            shell_ok("sh", line)
    assert any("secrets-run" in line for line in job["script"])


def test_gitlab_example():
    ex = load(GL_EXAMPLE)
    assert any(GITLAB.name in str(i) for i in ex["include"]), "the template is not included"
    stages = ex.get("stages", [])
    jobs = {k: v for k, v in ex.items() if isinstance(v, dict) and "extends" in v}
    assert jobs
    for name, job in jobs.items():
        assert job["extends"] == ".secrets-run", name
        assert job.get("stage") in stages, name
        if "script" in job:      # its own commands (the scheduled drift report)
            for line in job["script"]:
                shell_ok("sh", line)
            assert any(line.startswith("secrets-run ") for line in job["script"]), name
        else:
            assert job["variables"].get("SECRETS_RUN_COMMAND"), name
    assert any("id_tokens" in job for job in jobs.values())
    assert any("secrets-run plan" in " ".join(job.get("script", [])) for job in jobs.values())


def test_action_run_step_runs_the_command(tmp_path, secrets_run_bin):
    """The action's last step, run as GitHub would (bash, inputs in env), with secrets-run on
    PATH: the command sees a generated secret's file and its status comes through."""
    step = load(ACTION)["runs"]["steps"][-1]
    (tmp_path / "secrets.yaml").write_text(
        "version: 1\nenvironments: {ci: {}}\nsecrets:\n  TOKEN: {generate: {length: 32}}\npolicy: {require_owner: false}\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "secrets-run").symlink_to(secrets_run_bin)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path),
           "SR_COMMAND": 'test -s "$TOKEN_FILE" && echo got-token && exit 3',
           "SR_MANIFEST": "secrets.yaml", "SR_ENVIRONMENT": "ci", "SR_STAGE": "", "SR_SANDBOX": "auto"}
    r = subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 3 and "got-token" in r.stdout, r
