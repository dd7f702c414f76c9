"""The shape of the CI templates, with Debian's python3-yaml: the GitHub composite action
(packaging/github-action/action.yml), the GitLab template (packaging/gitlab/
secrets-run.gitlab-ci.yml) and their examples. Required keys, every step runnable (`run` with
`shell`, or `uses`), every `inputs.X` an input, the examples' `with:` keys inputs of the
action, and every shell script in them accepted by `bash -n` / `sh -n`."""

import os
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


class GitLabLoader(yaml.SafeLoader):
    """safe_load plus GitLab's !reference tag, read as the list of its path (what GitLab
    replaces it with is checked by gitlab-ci-local, test_gitlab_example_runs)."""


GitLabLoader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))


def load(path):
    doc = yaml.load(path.read_text(), Loader=GitLabLoader)
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
    for name in ["command", "manifest", "environment", "stage", "only", "working-directory",
                 "on-leak", "sandbox", "version", "deb"]:
        assert name in inputs and inputs[name].get("description"), name
    assert {"version", "status", "leaks"} <= set(a["outputs"])
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
    # the OIDC permission Vault JWT auth needs is documented; no step hands a value to the
    # steps after it through $GITHUB_ENV (secrets-run requests the OIDC token itself)
    assert "id-token: write" in text
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "GITHUB_ENV" not in scripts and "ACTIONS_ID_TOKEN" not in scripts
    # a .deb is installed with its Recommends (libcurl for Vault)
    install = next(s for s in steps if s.get("id") == "install")["run"]
    assert "apt-get install" in install and "--no-install-recommends" not in install
    # a build is cached, keyed on the source
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert "steps.source.outputs.hash" in cache["with"]["key"]


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
                if step["with"].get("stage") == "deploy":    # Vault JWT login
                    perms = job.get("permissions") or wf.get("permissions") or {}
                    assert perms.get("id-token") == "write", job_name
    assert used_action
    runs = [step["run"] for job in wf["jobs"].values() for step in job["steps"] if "run" in step]
    assert any(r.startswith("secrets-run plan") for r in runs), "the scheduled drift report"


def test_gitlab_template():
    t = load(GITLAB)
    job, install = t[".secrets-run"], t[".secrets-run-install"]
    assert job.get("script"), "the template has no script"
    assert any("secrets-run" in line for line in job["script"])
    # the install is one hidden job's script, which .secrets-run (and any job with a
    # before_script of its own) takes by !reference
    assert job["before_script"] == [[".secrets-run-install", "script"]]
    assert "!reference [.secrets-run-install, script]" in GITLAB.read_text()
    for line in install["script"] + job["script"]:
        shell_ok("sh", line)
    # it composes: no job-level variable would override the pipeline's own (global) ones,
    # no image or id_tokens the including job did not ask for
    for name, hidden in t.items():
        assert not {"variables", "image", "id_tokens"} & set(hidden), name
    # a .deb is installed with its Recommends (libcurl for Vault)
    text = "\n".join(install["script"])
    assert "apt-get install -y -qq \"$(realpath" in text


def test_gitlab_example():
    ex = load(GL_EXAMPLE)
    assert any(GITLAB.name in str(i) for i in ex["include"]), "the template is not included"
    stages = ex.get("stages", [])
    jobs = {k: v for k, v in ex.items() if isinstance(v, dict) and "extends" in v}
    assert jobs
    for name, job in jobs.items():
        assert job["extends"] == ".secrets-run", name
        assert job.get("stage") in stages, name
        if "before_script" in job:     # its own: the install is kept by !reference
            assert job["before_script"][0] == [".secrets-run-install", "script"], name
        if "script" in job:      # its own commands
            for line in job["script"]:
                shell_ok("sh", line)
            assert any(line.startswith("secrets-run ") for line in job["script"]), name
        else:
            assert job["variables"].get("SECRETS_RUN_COMMAND"), name
    assert any("before_script" in job for job in jobs.values())
    assert any("id_tokens" in job for job in jobs.values())
    assert any("secrets-run plan" in " ".join(job.get("script", [])) for job in jobs.values())
    assert ex["variables"].get("SECRETS_RUN_SOURCE")


def action_step(step_id):
    return next(s for s in load(ACTION)["runs"]["steps"] if s.get("id") == step_id)


def run_action_steps(tmp_path, secrets_run_bin, inputs):
    """The action's find, install and run steps as GitHub runs them (bash, inputs in env:,
    $GITHUB_OUTPUT and $GITHUB_ENV files), secrets-run on PATH (so nothing is built or
    installed). Returns (run step's result, its outputs, what the steps wrote to GITHUB_ENV)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    if not (bindir / "secrets-run").exists():
        (bindir / "secrets-run").symlink_to(secrets_run_bin)
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    base = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), "RUNNER_TEMP": str(tmp_path),
            "GITHUB_ENV": str(github_env), "XDG_STATE_HOME": str(tmp_path / "state"),
            # the sanitizers' settings of the build under test (meson test sets them)
            **{k: v for k, v in os.environ.items() if k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}}
    outputs = {}
    for step_id in ["source", "install", "run"]:
        step = action_step(step_id)
        out_file = tmp_path / f"output-{step_id}"
        out_file.write_text("")
        env = dict(base, GITHUB_OUTPUT=str(out_file))
        for key, value in step.get("env", {}).items():
            m = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", value)
            if m:
                env[key] = inputs.get(m.group(1), load(ACTION)["inputs"][m.group(1)].get("default", ""))
            elif "steps.source.outputs.build" in value:
                env[key] = outputs.get("source", {}).get("build", "")
            else:
                env[key] = ""
        r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                           cwd=tmp_path / "work", env=env, capture_output=True, text=True, timeout=120)
        outputs[step_id] = dict(line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line)
        if step_id != "run":
            assert r.returncode == 0, (step_id, r)
    return r, outputs, github_env.read_text()


@pytest.fixture
def action_project(tmp_path):
    work = tmp_path / "work"
    (work / "app").mkdir(parents=True)
    (work / "app" / "secrets.yaml").write_text(
        "version: 1\nenvironments: {ci: {}}\nsecrets:\n"
        "  TOKEN: {generate: {length: 32}}\n  OTHER: {generate: {length: 32}}\n"
        "policy: {require_owner: false}\n")
    return tmp_path


def test_action_steps_run_the_command(action_project, secrets_run_bin, project_version):
    """The command sees a generated secret's file in the working directory given, `only`
    narrows the delivery, its status comes through as the step's and as `status`."""
    r, outputs, github_env = run_action_steps(action_project, secrets_run_bin, {
        "command": 'test -s "$TOKEN_FILE" && test -z "${OTHER_FILE:-}" && test -f secrets.yaml && echo got-token && exit 3',
        "environment": "ci", "sandbox": "auto", "only": "TOKEN", "working-directory": "app"})
    assert outputs["source"]["build"] == "false"
    assert outputs["install"]["version"] == project_version
    assert r.returncode == 3 and "got-token" in r.stdout, r
    assert outputs["run"] == {"status": "3", "leaks": "0"}
    assert github_env == "", "a step wrote to $GITHUB_ENV"


def test_action_outputs_leaks(action_project, secrets_run_bin):
    r, outputs, _ = run_action_steps(action_project, secrets_run_bin, {
        "command": 'cat "$TOKEN_FILE"; echo; base64 < "$TOKEN_FILE"', "environment": "ci",
        "working-directory": "app"})
    assert r.returncode == 123, r
    assert outputs["run"] == {"status": "123", "leaks": "2"}
    warn, outputs, _ = run_action_steps(action_project, secrets_run_bin, {
        "command": 'cat "$TOKEN_FILE"', "environment": "ci", "working-directory": "app",
        "on-leak": "warn"})
    assert warn.returncode == 0 and outputs["run"] == {"status": "0", "leaks": "1"}, warn
    missing, outputs, _ = run_action_steps(action_project, secrets_run_bin, {
        "command": "true", "environment": "ci", "working-directory": "app", "manifest": "none.yaml"})
    assert missing.returncode == 125 and outputs["run"]["status"] == "125", missing


def test_action_cache_key_is_a_hash_of_the_source(tmp_path):
    """Without a .deb or a secrets-run on PATH the find step asks for a build, keyed on a hash
    of every file of the action's source: the same for the same files, another for a change."""
    step = action_step("source")
    src = tmp_path / "action-src"
    (src / "agent").mkdir(parents=True)
    (src / "agent" / "main.c").write_text("int main(void) { return 0; }\n")
    (src / "meson.build").write_text("project('x', 'c')\n")
    (src / "packaging" / "github-action").mkdir(parents=True)

    def find():
        out = tmp_path / "output"
        out.write_text("")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GITHUB_OUTPUT": str(out), "SR_DEB": "",
               "SR_SOURCE": str(src / "packaging" / "github-action" / ".." / "..")}
        r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r
        return dict(line.split("=", 1) for line in out.read_text().splitlines())

    first = find()
    assert first["build"] == "true" and re.fullmatch(r"[0-9a-f]{32}", first["hash"]), first
    assert first["dir"] == f"{tmp_path}/.cache/secrets-run-action"
    assert find()["hash"] == first["hash"]
    (src / "agent" / "main.c").write_text("int main(void) { return 1; }\n")
    assert find()["hash"] != first["hash"]
