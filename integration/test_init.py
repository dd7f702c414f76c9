"""`secrets-run init`: a commented starter secrets.yaml for the CI system it detects (GitHub
Actions, GitLab CI, or local), which `check` passes and the JSON Schema accepts as written,
with environments, an env backend for CI variables, the embedded store, a generated test
password and the policy defaults; it never overwrites a file."""

import json
import os
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "secrets-run.schema.json"


def no_ci_env():
    return {k: None for k in ("GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "CI")}


@pytest.mark.parametrize("ci,setup,env", [
    ("GitHub Actions", lambda d: (d / ".github" / "workflows").mkdir(parents=True), {}),
    ("GitLab CI", lambda d: (d / ".gitlab-ci.yml").write_text("test: {script: [true]}\n"), {}),
    ("local runs", lambda d: None, {}),
    ("GitHub Actions", lambda d: None, {"GITHUB_ACTIONS": "true"}),
    ("GitLab CI", lambda d: None, {"GITLAB_CI": "true"}),
])
def test_init_writes_a_manifest_check_accepts(proj, ci, setup, env):
    setup(proj.dir)
    r = proj.run("init", env={**no_ci_env(), **env})
    assert r.status == 0, r
    path = proj.dir / "secrets.yaml"
    text = path.read_text()
    assert f"for {ci}" in text and f"for {ci}" in r.stdout, (text, r)
    doc = yaml.safe_load(text)
    # what the issue asks for: environments, the store, a generated test password, policy
    assert doc["version"] == 1 and "dev" in doc["environments"] and doc["environments"]["prod"]["protected"]
    assert doc["backends"]["local"]["type"] == "file"
    assert doc["secrets"]["TEST_DB_PASSWORD"]["generate"]["length"] >= 16
    assert {"on_leak", "sandbox", "min_secret_length", "require_owner"} <= set(doc["policy"])
    if ci != "local runs":
        assert doc["backends"]["ci"]["type"] == "env" and "ci" in doc["environments"]
        assert doc["secrets"]["API_TOKEN"]["from"] == "ci:API_TOKEN"
    assert text.count("#") > 20, "a starter manifest explains itself"
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    # check passes it clean, and a dev run delivers the generated password
    check = proj.run("check", env=no_ci_env())
    assert check.status == 0 and "0 errors, 0 warnings" in check.stderr, check
    step = proj.script('report size "$(wc -c < "$TEST_DB_PASSWORD_FILE")"\n')
    run = proj.run("run", "--", step, env=no_ci_env())
    assert run.status == 0, run
    assert proj.report()["size"] == "32"


def test_the_ci_environment_gets_the_ci_variable(proj):
    (proj.dir / ".github" / "workflows").mkdir(parents=True)
    assert proj.run("init", env=no_ci_env()).status == 0
    value = proj.secret()
    step = proj.script(f'report token "$(same "$API_TOKEN_FILE" "{proj.expect(value)}")"\n'
                       'report in_env "${API_TOKEN:+yes}"\n')
    r = proj.run("-e", "ci", "--", step, env={**no_ci_env(), "API_TOKEN": value})
    assert r.status == 0, r
    assert proj.report() == {"token": "yes", "in_env": ""}
    assert not proj.leaked()


def test_init_never_overwrites(proj):
    path = proj.dir / "secrets.yaml"
    path.write_text("version: 1\n# mine\n")
    r = proj.run("init", env=no_ci_env())
    assert r.status == 1 and "already exists" in r.stderr, r
    assert path.read_text() == "version: 1\n# mine\n"
    # nor follows a link planted where it would write
    target = proj.data / "elsewhere.yaml"
    os.symlink(target, proj.dir / "linked.yaml")
    r = proj.run("init", "-f", "linked.yaml", env=no_ci_env())
    assert r.status == 1 and not target.exists(), r


def test_init_to_another_path_and_as_json(proj):
    r = proj.run("init", "-f", "ci/secrets.yaml", "--format", "json", env=no_ci_env())
    assert r.status == 1, "a missing directory is an error, said"
    (proj.dir / "ci").mkdir()
    r = proj.run("init", "-f", "ci/secrets.yaml", "--format", "json", env=no_ci_env())
    assert r.status == 0, r
    assert json.loads(r.stdout) == {"written": "ci/secrets.yaml", "ci": "local"}
    assert (proj.dir / "ci" / "secrets.yaml").exists()
