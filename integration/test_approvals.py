"""Signed approvals end to end, with keys ssh-keygen makes at test time: `approve --key` signs
a secret's binding and ssh-keygen -Y verify accepts it; a signature ssh-keygen -Y sign makes
over `approve --print-payload` verifies in-process; check reports a changed binding, a wrong
signer, a missing or tampered approval and an old one with their SR ids at FILE:LINE:COL; run
refuses a protected secret without a valid approval with 125, naming the rule, and audits it.
Ages come from the approval's own signed time (the tests sign back-dated payloads)."""

import datetime
import json
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen (openssh-client) is not installed")

NS = "secrets-run-approval"

MANIFEST = """\
version: 1
project: approvals-test
defaults: {{environment: dev}}
backends:
  ci: {{type: env}}
environments:
  dev: {{}}
  prod: {{protected: true}}
secrets:
  DEPLOY_TOKEN:
    from: "ci:DEPLOY_TOKEN_SRC"
    owner: team-deploy
    environments: [prod, dev]
    stages: {stages}
    approved_by: {approved_by}
  DEV_TOKEN: {{from: "ci:DEV_TOKEN_SRC", owner: team-dev, environments: [dev]}}
policy:
{policy}
"""
DEFAULT_POLICY = """\
  allowed_signers: allowed_signers
  approval_max_age: 90d
  approval_fail_after: 120d"""


def keygen(proj, name, kind="ed25519", passphrase=""):
    path = proj.data / name
    args = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", name, "-f", str(path)]
    if kind == "rsa":
        args[4:4] = ["-b", "2048"]
    subprocess.run(args, check=True)
    return path


def public(path):
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def write_manifest(proj, stages="[deploy]", approved_by="[alice]", policy=DEFAULT_POLICY):
    return proj.manifest(MANIFEST.format(stages=stages, approved_by=approved_by, policy=policy))


def signers(proj, *lines):
    (proj.dir / "allowed_signers").write_text("".join(line + "\n" for line in lines))


@pytest.fixture
def world(proj):
    """alice's and mallory's keys, alice in allowed_signers, the manifest naming alice."""
    keys = {"alice": keygen(proj, "alice"), "mallory": keygen(proj, "mallory")}
    signers(proj, f"alice {public(keys['alice'])}")
    write_manifest(proj)
    token = proj.secret()
    env = {"DEPLOY_TOKEN_SRC": token, "DEV_TOKEN_SRC": proj.secret()}
    return proj, keys, env


def approval_file(proj, identity="alice", secret="DEPLOY_TOKEN", env="prod"):
    return proj.dir / "secrets.approvals" / f"{secret}.{env}.{identity}.approval"


def split(path):
    """(payload, armored signature) of an approval file."""
    text = path.read_text()
    at = text.index("-----BEGIN SSH SIGNATURE-----")
    return text[:at], text[at:]


def ssh_sign(proj, key, payload):
    """ssh-keygen -Y sign over payload (the approver's own tool); returns the armor."""
    msg = proj.data / "payload"
    msg.write_text(payload)
    sig = proj.data / "payload.sig"
    sig.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", NS, str(msg)], check=True,
                   capture_output=True)
    return sig.read_text()


def signed_payload(proj, key, days_ago=0, identity="alice", env="prod"):
    """An approval signed by ssh-keygen over approve --print-payload, dated days_ago."""
    r = proj.run("approve", "DEPLOY_TOKEN", "-e", env, "--identity", identity, "--print-payload")
    assert r.status == 0, r
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    payload = re.sub(r'^approved: ".*"$', f'approved: "{when:%Y-%m-%dT%H:%M:%SZ}"', r.stdout, flags=re.M)
    out = approval_file(proj, identity, env=env)
    out.parent.mkdir(exist_ok=True)
    out.write_text(payload + ssh_sign(proj, key, payload))
    return out


def check(proj):
    r = proj.run("check", "--format", "json")
    assert r.status in (0, 1), r
    return r.status, json.loads(r.stdout)


def ids(findings):
    return sorted({f["id"] for f in findings})


def dry_run(proj, env):
    return proj.run("run", "--dry-run", "--format", "json", "-e", "prod", "-s", "deploy", env=env)


def manifest_pos(proj, needle, nth=0):
    """1-based line and column of the nth occurrence of needle in the manifest."""
    lines = (proj.dir / "secrets.yaml").read_text().splitlines()
    hits = [(i + 1, line.index(needle) + 1) for i, line in enumerate(lines) if needle in line]
    return hits[nth]


def test_approve_signs_what_ssh_keygen_verifies(world):
    proj, keys, env = world
    status, findings = check(proj)
    assert status == 1 and ids(findings) == ["SR115"], findings
    r = proj.run("approve", "DEPLOY_TOKEN", "--key", keys["alice"])
    assert r.status == 0, r
    path = approval_file(proj)
    assert path.is_file() and str(path.relative_to(proj.dir)) in r.stdout
    status, findings = check(proj)
    assert status == 0 and findings == [], findings
    payload, sig = split(path)
    assert payload.startswith("secrets-run approval v1\n") and 'identity: "alice"' in payload
    (proj.data / "sig").write_text(sig)
    v = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(proj.dir / "allowed_signers"), "-I", "alice",
                        "-n", NS, "-s", str(proj.data / "sig")], input=payload, text=True, capture_output=True)
    assert v.returncode == 0 and "Good" in v.stdout, v
    r = dry_run(proj, env)
    assert r.status == 0, r
    assert [s["name"] for s in json.loads(r.stdout)["secrets"]] == ["DEPLOY_TOKEN"]


def test_ssh_keygen_signature_verifies_in_process(world):
    proj, keys, env = world
    signed_payload(proj, keys["alice"])
    status, findings = check(proj)
    assert status == 0 and findings == [], findings
    assert dry_run(proj, env).status == 0


def test_changed_binding_is_refused_with_its_rule(world):
    proj, keys, env = world
    assert proj.run("approve", "DEPLOY_TOKEN", "--key", keys["alice"]).status == 0
    write_manifest(proj, stages="[deploy, release]")
    status, findings = check(proj)
    assert status == 1 and ids(findings) == ["SR116"], findings
    f = findings[0]
    assert (f["line"], f["column"]) == manifest_pos(proj, "alice"), f
    assert "'stages' changed" in f["message"] and "DEPLOY_TOKEN.prod.alice.approval:1" in f["message"]
    log = proj.data / "audit.jsonl"
    r = proj.run("run", "-e", "prod", "-s", "deploy", "--audit-log", log, "--", "true", env=env)
    assert r.status == 125, r
    assert "SR116" in r.stderr and "rule: approval.changed" in r.stderr, r.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    denials = [x for x in records if x["event"] == "policy.deny"]
    assert denials == [dict(denials[0], name="DEPLOY_TOKEN", rule="approval.changed")], records
    assert not [x for x in records if x["event"] == "secret.fetch"], records


def test_reordering_a_list_keeps_the_approval(world):
    proj, keys, env = world
    write_manifest(proj, stages="[deploy, release]")
    assert proj.run("approve", "DEPLOY_TOKEN", "--key", keys["alice"]).status == 0
    write_manifest(proj, stages="[release, deploy, deploy]")
    assert check(proj) == (0, [])


def test_wrong_signer(world):
    proj, keys, env = world
    r = proj.run("approve", "DEPLOY_TOKEN", "--key", keys["mallory"], "--identity", "alice")
    assert r.status == 0 and "SR118" in r.stderr, r
    status, findings = check(proj)
    assert status == 1 and ids(findings) == ["SR118"], findings
    assert "does not list" in findings[0]["message"]
    # listed, but for someone else
    signers(proj, f"alice {public(keys['alice'])}", f"bob {public(keys['mallory'])}")
    status, findings = check(proj)
    assert ids(findings) == ["SR118"] and "lists for 'bob', not for 'alice'" in findings[0]["message"], findings
    r = dry_run(proj, env)
    assert r.status == 125 and "rule: approval.signer" in r.stderr, r


def test_identity_without_signature(world):
    proj, keys, env = world
    write_manifest(proj, approved_by="[alice, bob]")
    assert proj.run("approve", "DEPLOY_TOKEN", "--key", keys["alice"]).status == 0
    status, findings = check(proj)
    assert status == 1 and ids(findings) == ["SR115"], findings
    assert (findings[0]["line"], findings[0]["column"]) == manifest_pos(proj, "bob")
    r = dry_run(proj, env)
    assert r.status == 125 and "rule: approval.missing" in r.stderr, r


def test_tampered_approval(world):
    proj, keys, env = world
    assert proj.run("approve", "DEPLOY_TOKEN", "--key", keys["alice"]).status == 0
    write_manifest(proj, stages="[deploy, release]")
    # the approval edited to say what the manifest says now: the signature no longer holds
    path = approval_file(proj)
    path.write_text(path.read_text().replace('stages: ["deploy"]', 'stages: ["deploy","release"]'))
    status, findings = check(proj)
    assert status == 1 and ids(findings) == ["SR117"] and "does not verify" in findings[0]["message"], findings
    assert dry_run(proj, env).status == 125


def test_recertification_ages_by_the_signed_time(world):
    proj, keys, env = world
    signed_payload(proj, keys["alice"], days_ago=100)
    status, findings = check(proj)
    assert status == 0 and ids(findings) == ["SR119"] and findings[0]["severity"] == "warning", findings
    r = dry_run(proj, env)
    assert r.status == 0 and "SR119" in r.stderr and "approval_max_age" in r.stderr, r
    signed_payload(proj, keys["alice"], days_ago=130)
    status, findings = check(proj)
    assert status == 1 and findings[0]["id"] == "SR119" and findings[0]["severity"] == "error", findings
    r = dry_run(proj, env)
    assert r.status == 125 and "rule: approval.expired" in r.stderr, r
    # the time is signed: editing it back breaks the signature
    path = approval_file(proj)
    now = datetime.datetime.now(datetime.timezone.utc)
    path.write_text(re.sub(r'^approved: ".*"$', f'approved: "{now:%Y-%m-%dT%H:%M:%SZ}"', path.read_text(),
                           flags=re.M))
    assert ids(check(proj)[1]) == ["SR117"]
    # and a date ahead of now is refused, not taken as young
    signed_payload(proj, keys["alice"], days_ago=-30)
    status, findings = check(proj)
    assert ids(findings) == ["SR117"] and "future" in findings[0]["message"], findings


def test_dev_runs_are_not_gated_by_prod_approvals(world):
    proj, keys, env = world
    r = proj.run("run", "--dry-run", "--format", "json", "-e", "dev", "-s", "deploy", env=env)
    assert r.status == 0, r
    assert sorted(s["name"] for s in json.loads(r.stdout)["secrets"]) == ["DEPLOY_TOKEN", "DEV_TOKEN"]


def test_names_without_allowed_signers_are_a_warning(proj):
    write_manifest(proj, policy="  on_leak: fail")
    status, findings = check(proj)
    assert status == 0 and ids(findings) == ["SR120"], findings
    assert (findings[0]["line"], findings[0]["column"]) == manifest_pos(proj, "approved_by")


def test_allowed_signers_options(world):
    proj, keys, env = world
    assert proj.run("approve", "DEPLOY_TOKEN", "--key", keys["alice"]).status == 0
    key = public(keys["alice"])
    signers(proj, f'alice namespaces="git,file" {key}')
    assert "namespaces" in check(proj)[1][0]["message"]
    signers(proj, f'alice valid-before="20200101Z" {key}')
    assert "valid" in check(proj)[1][0]["message"]
    signers(proj, f'"alice,carol,!mallory" namespaces="{NS}",valid-after="20200101" {key}')
    assert check(proj) == (0, [])
    signers(proj, f"alice@* {key}")
    assert ids(check(proj)[1]) == ["SR118"]
    signers(proj, f"alice {key}", "carol bogus-option ssh-ed25519 AAAA")
    status, findings = check(proj)
    assert status == 1 and ids(findings) == ["SR121"] and "allowed_signers:2" in findings[0]["message"], findings


def test_other_key_types_are_refused_by_name(world):
    proj, keys, env = world
    rsa = keygen(proj, "alice-rsa", kind="rsa")
    signers(proj, f"alice {public(rsa)}")
    r = proj.run("approve", "DEPLOY_TOKEN", "--key", rsa)
    assert r.status == 1 and "Ed25519" in r.stderr, r
    signed_payload(proj, rsa)
    status, findings = check(proj)
    assert ids(findings) == ["SR117"] and "Ed25519" in findings[0]["message"], findings


def test_encrypted_key_points_to_the_agent_flow(world):
    proj, keys, env = world
    locked = keygen(proj, "locked", passphrase="correct horse battery")
    r = proj.run("approve", "DEPLOY_TOKEN", "--key", locked, "--identity", "alice")
    assert r.status == 1 and "passphrase" in r.stderr and "--print-payload" in r.stderr, r


def test_one_approvals_file(world):
    proj, keys, env = world
    write_manifest(proj, policy=DEFAULT_POLICY + "\n  approvals: approvals.txt")
    (proj.dir / "approvals.txt").write_text("# approvals of secrets.yaml\n")
    assert proj.run("approve", "DEPLOY_TOKEN", "--key", keys["alice"]).status == 0
    assert check(proj) == (0, [])
    first = (proj.dir / "approvals.txt").read_text()
    assert first.count("secrets-run approval v1") == 1
    # approving again replaces alice's approval, it does not pile up
    write_manifest(proj, stages="[deploy, release]", policy=DEFAULT_POLICY + "\n  approvals: approvals.txt")
    assert ids(check(proj)[1]) == ["SR116"]
    assert proj.run("approve", "DEPLOY_TOKEN", "-e", "prod", "--key", keys["alice"]).status == 0
    assert (proj.dir / "approvals.txt").read_text().count("secrets-run approval v1") == 1
    assert check(proj) == (0, [])


def test_plan_lists_approvals_due(world):
    proj, keys, env = world
    r = proj.run("plan", "-e", "prod", "--format", "json")
    assert r.status == 2, r
    rows = json.loads(r.stdout)["approvals"]
    assert [(x["secret"], x["environment"], x["identity"], x["status"]) for x in rows] == \
        [("DEPLOY_TOKEN", "prod", "alice", "missing")]
    signed_payload(proj, keys["alice"], days_ago=100)
    r = proj.run("plan", "-e", "prod")
    assert r.status == 2 and "past approval_max_age 90d" in r.stdout and "1 approval to sign again" in r.stdout, r
    r = proj.run("plan", "--all", "--format", "json")
    row = json.loads(r.stdout)["approvals"][0]
    assert row["status"] == "due" and 99 * 86400 < row["age_seconds"] < 101 * 86400, row
    signed_payload(proj, keys["alice"], days_ago=130)
    assert json.loads(proj.run("plan", "--all", "--format", "json").stdout)["approvals"][0]["status"] == "expired"
    assert proj.run("approve", "DEPLOY_TOKEN", "--key", keys["alice"]).status == 0
    r = proj.run("plan", "-e", "prod", "--format", "json")
    assert r.status == 0 and json.loads(r.stdout)["approvals"][0]["status"] == "ok", r
    # a plan for dev has no approvals to look at
    assert json.loads(proj.run("plan", "-e", "dev", "--format", "json").stdout)["approvals"] == []
