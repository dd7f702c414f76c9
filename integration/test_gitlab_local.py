"""The example GitLab pipeline (examples/gitlab-ci.yml with the template it includes), run by
gitlab-ci-local (npm, packaging/install-deps.sh) with its shell executor against the built
binary, and both files validated against GitLab's CI JSON schema.

The example is run as written but for two changes a machine without GitLab and Docker
needs: the remote include becomes a local copy of packaging/gitlab/secrets-run.gitlab-ci.yml,
and the `image:` keys are dropped (gitlab-ci-local uses its shell executor only for jobs
without one). secrets-run is on the jobs' PATH, so the template's install finds it; its
.deb and source paths need apt and the network and are not run here.

GitLab's schema is the one gitlab-ci-local ships (src/schema/schema.js): its package.json's
fetch-and-patch-schema script takes GitLab's own app/assets/javascripts/editor/schema/ci.json
(gitlab-org/gitlab) and deletes every "pattern" keyword (jq 'del(.. | .pattern?)'), so the
structure, keys, types and enums are GitLab's and the string regexes are not checked. It is
read with node and applied with Debian's python3-jsonschema (draft 7, as the schema says)."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
GITLAB = ROOT / "packaging" / "gitlab" / "secrets-run.gitlab-ci.yml"
GL_EXAMPLE = ROOT / "examples" / "gitlab-ci.yml"
NPM_PREFIX = Path(os.environ.get("SECRETS_RUN_NPM_PREFIX", "/opt/secrets-run-ci"))
GCL = NPM_PREFIX / "node_modules" / ".bin" / "gitlab-ci-local"
SCHEMA_JS = NPM_PREFIX / "node_modules" / "gitlab-ci-local" / "src" / "schema" / "schema.js"

MANIFEST = """\
version: 1
project: gitlab-example
defaults: {environment: ci}
environments: {ci: {}, prod: {}}
secrets:
  TOKEN: {generate: {length: 32}, environments: [ci], stages: [test]}
  DEPLOY_KEY: {generate: {length: 32}, environments: [prod], stages: [deploy]}
policy: {require_owner: false}
"""


def need_gitlab_ci_local():
    for tool in ("node", "git", "rsync"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (packaging/install-deps.sh installs it)")
    if not GCL.exists():
        pytest.fail(f"{GCL} is missing (packaging/install-deps.sh installs it from npm)")


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))


@pytest.fixture(scope="module")
def gitlab_schema():
    need_gitlab_ci_local()
    r = subprocess.run(["node", "-e", "import(process.argv[1]).then((m) => "
                        "process.stdout.write(JSON.stringify(m.schema)))", str(SCHEMA_JS)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    assert schema.get("$id") == "https://gitlab.com/.gitlab-ci.yml", schema.get("$id")
    return schema


@pytest.mark.parametrize("path", [GITLAB, GL_EXAMPLE], ids=["template", "example"])
def test_valid_against_gitlabs_ci_schema(gitlab_schema, path):
    doc = yaml.load(path.read_text(), Loader=Loader)
    validator = jsonschema.Draft7Validator(gitlab_schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, "\n".join(errors)


def test_the_schema_sees_a_broken_job(gitlab_schema):
    bad = {"job": {"script": ["true"], "before_scrip": ["x"]}}
    assert list(jsonschema.Draft7Validator(gitlab_schema).iter_errors(bad))


@pytest.fixture
def pipeline(tmp_path, secrets_run_bin):
    """A project (a git repository on main) holding the example pipeline, the template it
    includes, a manifest, an npm package whose test reads a secret, and deploy.sh."""
    need_gitlab_ci_local()
    project = tmp_path / "project"
    (project / "ci").mkdir(parents=True)
    shutil.copy(GITLAB, project / "ci" / GITLAB.name)
    text = GL_EXAMPLE.read_text()
    text, n = re.subn(r"(?m)^  - remote: \S+$", f"  - local: ci/{GITLAB.name}", text)
    assert n == 1, "the example's include changed: update this test"
    text = re.sub(r"(?m)^(default:\n)?  image: \S+\n", "", text)
    assert "image:" not in text
    (project / ".gitlab-ci.yml").write_text(text)
    (project / "secrets.yaml").write_text(MANIFEST)
    (project / "package.json").write_text(json.dumps({
        "name": "gitlab-example", "version": "1.0.0", "private": True,
        "scripts": {"test": 'test -s "$TOKEN_FILE" && echo "npm test: got TOKEN as a file"'}}))
    (project / "package-lock.json").write_text(json.dumps({
        "name": "gitlab-example", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
        "packages": {"": {"name": "gitlab-example", "version": "1.0.0"}}}))
    deploy = project / "deploy.sh"
    deploy.write_text('#!/bin/sh\ntest -s "$DEPLOY_KEY_FILE" && echo "deploy: got DEPLOY_KEY as a file"\n')
    deploy.chmod(0o755)
    (project / ".gitignore").write_text(".gitlab-ci-local/\n")
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "example"],
                ["remote", "add", "origin", "https://gitlab.example.com/group/project.git"]):
        subprocess.run(git + cmd, check=True, capture_output=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "secrets-run").symlink_to(secrets_run_bin)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8",
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           **{k: v for k, v in os.environ.items() if k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}}
    return project, env


def gitlab_ci_local(project, env, *args):
    return subprocess.run([str(GCL), "--color=false", "--shell-executor-no-image", *args], cwd=project,
                          env=env, capture_output=True, text=True, timeout=300)


def test_gitlab_example_runs(pipeline):
    project, env = pipeline
    r = gitlab_ci_local(project, env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for job in ("test", "lint", "deploy"):
        assert re.search(rf"PASS\s+{job}\b", out), (job, out)
        # the template's install ran in each, a job with its own before_script included
        assert re.search(rf"(?m)^{job}\s+> secrets-run \d", out), (job, out)
    assert "npm test: got TOKEN as a file" in out
    assert "deploy: got DEPLOY_KEY as a file" in out
    assert re.search(r"(?m)^lint\s+> lint, set up", out), out
    assert not re.search(r"PASS\s+drift", out), "the scheduled job ran in a push pipeline"


def test_gitlab_example_scheduled_runs_the_drift_report(pipeline):
    project, env = pipeline
    r = gitlab_ci_local(project, env, "--variable", "CI_PIPELINE_SOURCE=schedule")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert re.search(r"PASS\s+drift", out) and "In sync" in out, out
    assert not re.search(r"PASS\s+(test|deploy)\b", out), out


def test_gitlab_template_leaves_the_pipelines_variables_alone(pipeline):
    """The merged jobs (gitlab-ci-local --preview: includes, extends and !reference
    expanded) carry no job-level SECRETS_RUN_SOURCE/REF/DEB that would hide the pipeline's
    global one (the old template's SECRETS_RUN_SOURCE: "" did)."""
    project, env = pipeline
    r = gitlab_ci_local(project, env, "--preview")
    assert r.returncode == 0, r.stdout + r.stderr
    merged = yaml.safe_load(r.stdout[r.stdout.index("---"):])
    assert merged["variables"]["SECRETS_RUN_SOURCE"].startswith("https://")
    for name in ("test", "lint", "deploy", "drift"):
        job_vars = merged[name].get("variables") or {}
        assert not {"SECRETS_RUN_SOURCE", "SECRETS_RUN_REF", "SECRETS_RUN_DEB"} & set(job_vars), (name, job_vars)
        assert "secrets-run --version" in "\n".join(merged[name]["before_script"]), name
