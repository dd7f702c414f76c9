"""Scope: which secrets a run receives for its environment, stage and CI context, --only, and
the rule that a pull-request event never receives a secret of a protected environment."""

import json

import pytest


def _delivered(proj, names, *args, env=None, expect_status=0):
    """Runs a step that reports which of names it received (as <NAME>_FILE pointing at an
    existing file); returns that set."""
    step = proj.script("".join(
        f'if [ -n "${{{n}_FILE:-}}" ] && [ -f "${{{n}_FILE}}" ]; then report {n} yes; '
        f'elif [ -e "$SECRETS_DIR/{n}" ]; then report {n} stray; else report {n} no; fi\n'
        for n in names))
    r = proj.run("run", *args, "--", step, env=env)
    assert r.status == expect_status, r
    rep = proj.report()
    (proj.data / "report").unlink(missing_ok=True)
    assert not [n for n in names if rep.get(n) == "stray"], \
        f"files for undelivered secrets in $SECRETS_DIR: {rep}"
    return {n for n in names if rep.get(n) == "yes"}


ENV_SCOPED = """
    DEV_ONLY: {generate: {length: 32}, environments: [dev]}
    PROD_ONLY: {generate: {length: 32}, environments: [prod]}
    EVERYWHERE: {generate: {length: 32}}
    """
ENV_NAMES = ["DEV_ONLY", "PROD_ONLY", "EVERYWHERE"]


def test_environment_scope_default_dev(proj):
    proj.standard_manifest(ENV_SCOPED)
    assert _delivered(proj, ENV_NAMES) == {"DEV_ONLY", "EVERYWHERE"}


@pytest.mark.parametrize("how", ["-e", "--env", "SECRETS_RUN_ENV"])
def test_environment_selected(proj, how):
    proj.standard_manifest(ENV_SCOPED)
    if how == "SECRETS_RUN_ENV":
        got = _delivered(proj, ENV_NAMES, env={"SECRETS_RUN_ENV": "prod"})
    else:
        got = _delivered(proj, ENV_NAMES, how, "prod")
    assert got == {"PROD_ONLY", "EVERYWHERE"}


def test_env_flag_beats_env_var(proj):
    proj.standard_manifest(ENV_SCOPED)
    got = _delivered(proj, ENV_NAMES, "-e", "dev", env={"SECRETS_RUN_ENV": "prod"})
    assert got == {"DEV_ONLY", "EVERYWHERE"}


def test_stage_scope(proj):
    proj.standard_manifest("""
        TEST_ONLY: {generate: {length: 32}, stages: [test]}
        ANY_STAGE: {generate: {length: 32}}
        """)
    names = ["TEST_ONLY", "ANY_STAGE"]
    assert _delivered(proj, names) == {"ANY_STAGE"}, "no stage: stage-scoped secret delivered"
    assert _delivered(proj, names, "-s", "test") == set(names)
    assert _delivered(proj, names, "--stage", "deploy") == {"ANY_STAGE"}
    assert _delivered(proj, names, env={"SECRETS_RUN_STAGE": "test"}) == set(names)


def test_out_of_scope_secret_is_never_fetched(proj):
    called = proj.data / "provider-called"
    provider = proj.data / "provider.sh"
    provider.write_text(f"#!/bin/sh\ntouch '{called}'\nhead -c 24 /dev/urandom | od -An -tx1 | tr -d ' \\n'\n")
    provider.chmod(0o755)
    proj.standard_manifest(
        backends=f"p: {{type: exec, command: [{json.dumps(str(provider))}]}}",
        secrets_block="""
            PROD_DB: {from: "p:db", owner: t, environments: [prod]}
            LOCAL: {generate: {length: 32}}
            """)
    assert _delivered(proj, ["PROD_DB", "LOCAL"]) == {"LOCAL"}
    assert not called.exists(), "an out-of-scope secret was fetched"


def test_only_delivers_the_subset(proj):
    proj.standard_manifest("""
        A_SECRET: {generate: {length: 32}}
        B_SECRET: {generate: {length: 32}}
        C_SECRET: {generate: {length: 32}}
        """)
    names = ["A_SECRET", "B_SECRET", "C_SECRET"]
    assert _delivered(proj, names, "--only", "A_SECRET,C_SECRET") == {"A_SECRET", "C_SECRET"}
    assert _delivered(proj, names, "--only", "B_SECRET") == {"B_SECRET"}


# ---- protected environments and pull requests ----

GITHUB_BASE = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/app",
               "GITHUB_ACTOR": "alice", "GITHUB_RUN_ID": "4242", "GITHUB_WORKFLOW": "ci",
               "GITHUB_SHA": "0" * 40}
GITHUB_PUSH = {**GITHUB_BASE, "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main",
               "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch"}
PR_CONTEXTS = {
    "github-pull_request": {**GITHUB_BASE, "GITHUB_EVENT_NAME": "pull_request",
                            "GITHUB_REF": "refs/pull/7/merge", "GITHUB_REF_NAME": "7/merge",
                            "GITHUB_HEAD_REF": "feature/x", "GITHUB_BASE_REF": "main"},
    "github-pull_request_target": {**GITHUB_BASE, "GITHUB_EVENT_NAME": "pull_request_target",
                                   "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main",
                                   "GITHUB_HEAD_REF": "feature/x", "GITHUB_BASE_REF": "main"},
    "gitlab-merge_request": {"GITLAB_CI": "true", "CI": "true",
                             "CI_PIPELINE_SOURCE": "merge_request_event",
                             "CI_COMMIT_REF_NAME": "feature/x",
                             "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/x",
                             "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                             "CI_MERGE_REQUEST_IID": "7", "CI_PROJECT_PATH": "acme/app",
                             "GITLAB_USER_LOGIN": "alice", "CI_PIPELINE_ID": "4242"},
}
PROTECTED = """
    PROD_TOKEN: {generate: {length: 32}, environments: [prod], approved_by: [alice, bob]}
    PROD_DB: {from: "p:db", owner: team-db, environments: [prod], approved_by: [alice, bob]}
    DEV_TOKEN: {generate: {length: 32}, environments: [dev]}
    """
PROTECTED_NAMES = ["PROD_TOKEN", "PROD_DB", "DEV_TOKEN"]


def _protected_manifest(proj):
    value = proj.secret()
    called = proj.data / "provider-called"
    provider = proj.data / "provider.sh"
    proj.expect(value + "\n", "db-value")
    provider.write_text(f"#!/bin/sh\ntouch '{called}'\ncat '{proj.data}/db-value'\n")
    provider.chmod(0o755)
    proj.standard_manifest(
        PROTECTED, protected_prod=True,
        backends=f"p: {{type: exec, command: [{json.dumps(str(provider))}]}}")
    return called


def test_protected_prod_on_push_gets_its_secrets(proj):
    """The control for the pull-request test: the same manifest delivers on a push."""
    _protected_manifest(proj)
    got = _delivered(proj, PROTECTED_NAMES, "-e", "prod", env=GITHUB_PUSH)
    assert got == {"PROD_TOKEN", "PROD_DB"}


@pytest.mark.parametrize("ctx", sorted(PR_CONTEXTS))
def test_pull_request_in_protected_prod_gets_none(proj, ctx):
    called = _protected_manifest(proj)
    got = _delivered(proj, PROTECTED_NAMES, "-e", "prod", env=PR_CONTEXTS[ctx])
    assert got == set(), f"a {ctx} event received protected secrets: {sorted(got)}"
    assert not called.exists(), "a protected secret was fetched for a pull request"


def test_only_protected_secret_on_pull_request_is_policy_error(proj):
    _protected_manifest(proj)
    marker = proj.data / "ran"
    r = proj.run("run", "-e", "prod", "--only", "PROD_TOKEN", "--", "touch", marker,
                 env=PR_CONTEXTS["github-pull_request"])
    assert r.status == 125, r
    assert not marker.exists()
    assert "PROD_TOKEN" in r.stderr
    low = r.stderr.lower()
    assert "pull" in low or "protected" in low, "the error should name the rule"
