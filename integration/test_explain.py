"""explain, the policy simulation: for one context it names what a run gets and, for every other
secret, the rule that keeps it out; --matrix does it for environments x stages x events. The
matrix of each example manifest (and of one that exercises branches, events, stages and the
approval gate) is checked against what `run --dry-run` really delivers in each context, the
CI context given to the run as GitHub Actions' variables. The examples' backends are replaced
by one exec provider (the test has no Vault, no store key and no CI secrets): that changes where
values come from, not who gets them."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.relative_to(ROOT / "examples") for p in (ROOT / "examples").rglob("secrets.yaml"))

POLICY_MANIFEST = """\
version: 1
project: explain-test
defaults: {environment: dev}
backends:
  p: {type: exec, command: [PROVIDER]}
environments:
  dev: {}
  prod: {protected: true}
secrets:
  BUILD_KEY: {from: "p:build", owner: t, environments: [dev], stages: [build]}
  MAIN_ONLY: {from: "p:main", owner: t, environments: [dev], when: {branches: [main]}}
  RELEASE_ONLY: {from: "p:release", owner: t, environments: [dev], when: {branches: ["release/*"]}}
  NIGHTLY: {from: "p:nightly", owner: t, environments: [dev], when: {events: [schedule]}}
  EVERYWHERE: {generate: {length: 32}}
  PROD_DEPLOY: {from: "p:deploy", owner: t, environments: [prod], stages: [build], approved_by: [alice]}
  PROD_GEN: {generate: {length: 32}, environments: [prod]}
policy:
  allowed_signers: allowed_signers
"""


def github_env(event, branch):
    """GitHub Actions' variables for a job of event on branch (a tag push for "tag")."""
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "1"}
    if event == "tag":
        return {**env, "GITHUB_EVENT_NAME": "push", "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": "v1.0",
                "GITHUB_REF": "refs/tags/v1.0"}
    if event == "pull_request":
        return {**env, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_HEAD_REF": branch,
                "GITHUB_REF": "refs/pull/7/merge", "GITHUB_REF_NAME": "7/merge"}
    return {**env, "GITHUB_EVENT_NAME": event, "GITHUB_REF_TYPE": "branch", "GITHUB_REF_NAME": branch,
            "GITHUB_REF": f"refs/heads/{branch}"}


def provider(proj):
    value = proj.secret()
    path = proj.data / "provider.sh"
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' '{value}'\n")
    path.chmod(0o755)
    return path


def example_manifest(proj, example):
    """The example with every backend an exec provider and references without #field."""
    doc = yaml.safe_load((ROOT / "examples" / example).read_text())
    command = [str(provider(proj))]
    doc["backends"] = {name: {"type": "exec", "command": command} for name in (doc.get("backends") or {})}
    for secret in (doc.get("secrets") or {}).values():
        if isinstance(secret, dict) and "from" in secret:
            secret["from"] = secret["from"].split("#")[0]
    (proj.dir / "secrets.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def matrix(proj, branch="main"):
    r = proj.run("explain", "--matrix", "--branch", branch, "--format", "json")
    assert r.status == 0, r
    return json.loads(r.stdout)["contexts"]


def dry_run(proj, row, branch):
    args = ["run", "--dry-run", "--format", "json", "--sandbox", "off", "-e", row["environment"]]
    if row["stage"]:
        args += ["-s", row["stage"]]
    return proj.run(*args, env=github_env(row["event"], branch))


def assert_matrix_matches_runs(proj, branch="main"):
    rows = matrix(proj, branch)
    assert rows and {r["event"] for r in rows} == {"push", "pull_request", "schedule", "tag"}
    for row in rows:
        r = dry_run(proj, row, branch)
        context = (row["environment"], row["stage"], row["event"])
        if row["refused"]:
            assert r.status == 125, (context, row, r)
            for refusal in row["refused"]:
                assert f"rule: {refusal['rule']}" in r.stderr, (context, r.stderr)
            continue
        assert r.status == 0, (context, r)
        delivered = [s["name"] for s in json.loads(r.stdout)["secrets"]]
        assert delivered == [s["name"] for s in row["secrets"]], (context, row, r.stderr)
    return rows


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_matrix_of_the_examples_matches_dry_runs(proj, example):
    example_manifest(proj, example)
    rows = assert_matrix_matches_runs(proj)
    assert any(row["secrets"] for row in rows), rows


def test_matrix_matches_dry_runs_with_branches_events_stages_and_approvals(proj):
    (proj.dir / "allowed_signers").write_text("")
    (proj.dir / "secrets.yaml").write_text(POLICY_MANIFEST.replace("PROVIDER", str(provider(proj))))
    rows = assert_matrix_matches_runs(proj, "main")
    by = {(r["environment"], r["stage"], r["event"]): r for r in rows}
    # no defaults.stage: "no stage" is a context of its own
    assert {r["stage"] for r in rows} == {"build", None}
    names = lambda key: [s["name"] for s in by[key]["secrets"]]   # noqa: E731
    assert names(("dev", None, "push")) == ["MAIN_ONLY", "EVERYWHERE"]
    assert names(("dev", None, "schedule")) == ["MAIN_ONLY", "NIGHTLY", "EVERYWHERE"]
    assert names(("dev", None, "tag")) == ["EVERYWHERE"]           # a tag build has no branch
    assert names(("dev", "build", "pull_request")) == ["BUILD_KEY", "MAIN_ONLY", "EVERYWHERE"]
    assert by[("prod", "build", "push")]["refused"][0]["rule"] == "approval.missing"
    assert by[("prod", None, "push")]["refused"] == []              # PROD_DEPLOY is for the build stage
    withheld = {w["name"]: w["rule"] for w in by[("prod", "build", "pull_request")]["withheld"]}
    assert withheld["PROD_DEPLOY"] == "protected-environment-pull-request"
    # another branch changes the answer the same way for both
    rows = {(r["environment"], r["stage"], r["event"]): r for r in assert_matrix_matches_runs(proj, "release/2.0")}
    assert [s["name"] for s in rows[("dev", None, "push")]["secrets"]] == ["RELEASE_ONLY", "EVERYWHERE"]


def test_one_context_names_each_rule(proj):
    (proj.dir / "allowed_signers").write_text("")
    (proj.dir / "secrets.yaml").write_text(POLICY_MANIFEST.replace("PROVIDER", str(provider(proj))))
    r = proj.run("explain", "-e", "dev", "-s", "build", "--event", "tag", "--format", "json")
    assert r.status == 0, r
    doc = json.loads(r.stdout)
    assert [s["name"] for s in doc["secrets"]] == ["BUILD_KEY", "EVERYWHERE"]
    rules = {w["name"]: (w["rule"], w["why"]) for w in doc["withheld"]}
    assert rules["MAIN_ONLY"] == ("when.branches", "it needs a branch of [main] and the branch is unknown")
    assert rules["NIGHTLY"] == ("when.events", "it needs an event of [schedule] and the event is 'push'")
    assert rules["PROD_GEN"][0] == "environments"
    r = proj.run("explain", "-e", "prod", "-s", "build", "--event", "push", "--branch", "main")
    assert r.status == 0, r
    assert "run refuses (exit 125)" in r.stdout and "approval.missing: SR115" in r.stdout, r.stdout
    assert "PROD_GEN" in r.stdout.split("does not get:")[0]
    r = proj.run("explain", "-e", "prod", "--event", "pull_request", "--branch", "main")
    assert "protected-environment-pull-request: environment 'prod' is protected" in r.stdout, r.stdout
    # nothing was fetched: the provider would have printed its value into no output at all
    assert proj.run("explain", "--matrix", "-e", "dev").status == 1


def test_explain_without_event_is_this_jobs_context(proj):
    (proj.dir / "allowed_signers").write_text("")
    (proj.dir / "secrets.yaml").write_text(POLICY_MANIFEST.replace("PROVIDER", str(provider(proj))))
    r = proj.run("explain", "--format", "json", env=github_env("schedule", "main"))
    doc = json.loads(r.stdout)
    assert (doc["event"], doc["branch"]) == ("schedule", "main"), doc
    assert "NIGHTLY" in [s["name"] for s in doc["secrets"]]
