"""plan, apply, rotate and the rotation gate on the embedded store, end to end: plan shows
missing -> apply creates -> plan clean -> the store's history is aged through `store export` /
`store import` (a migration feature that keeps timestamps, not a switch that could bypass the
gate) -> plan shows overdue -> run warns, then refuses past fail_after -> apply rotates -> run
passes. Also: idempotence, concurrent applies making exactly one version, rotate's refusals,
"rotate by hand" for secrets secrets-run cannot create, and export/import themselves.

Generated values are never printed; tests read them from export documents written to data/
and register them, so the leak guard checks every output for them too."""

import hashlib
import json
import os
import subprocess
import time

import pytest

DAY = 86400


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audit_records(proj, event):
    path = proj.base / "state" / "secrets-run" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if f'"{event}"' in line]


class World:
    """A project with a file store and a manifest holding a stored generated secret
    (TEST_DB_PASSWORD, rotation 30d/45d), an externally set one (API_TOKEN, rotation 30d)
    and an ephemeral generated one."""

    def __init__(self, proj, rotation="{max_age: 30d, fail_after: 45d}"):
        self.proj = proj
        self.store = proj.dir / ".secrets-run" / "store"
        self._n = 0
        proj.standard_manifest(f"""
            TEST_DB_PASSWORD:
              generate: {{length: 32, store: true}}
              owner: team-db
              rotation: {rotation}
            API_TOKEN:
              owner: team-web
              rotation: {{max_age: 30d}}
              environments: [prod]
            EPHEMERAL:
              generate: {{length: 24}}
            """, backends="local: {type: file}", extra="")
        text = (proj.dir / "secrets.yaml").read_text().replace(
            "  environment: dev\n", "  environment: dev\n  backend: local\n")
        (proj.dir / "secrets.yaml").write_text(text)
        r = proj.run("store", "init")
        assert r.status == 0, r

    def run(self, *args, **kw):
        return self.proj.run(*args, **kw)

    def export(self):
        """The store as a document (values registered for the leak guard)."""
        self._n += 1
        path = self.proj.data / f"export-{self._n}.json"
        r = self.proj.run("store", "export", path)
        assert r.status == 0, r
        assert (path.stat().st_mode & 0o777) == 0o600
        doc = json.loads(path.read_text())
        for versions in doc["secrets"].values():
            for v in versions:
                if "value" in v:
                    self.proj.register(v["value"])
        return doc

    def versions(self, name):
        return [v["version"] for v in self.export()["secrets"].get(name, [])]

    def age(self, name, days):
        """Rewrites name's history so its latest version is `days` old, through export and
        import --replace."""
        doc = self.export()
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days * DAY))
        for v in doc["secrets"][name]:
            v["created"] = when
        self._n += 1
        path = self.proj.data / f"aged-{self._n}.json"
        path.write_text(json.dumps(doc))
        path.chmod(0o600)
        r = self.proj.run("store", "import", "--replace", path)
        assert r.status == 0, r
        path.unlink()

    def plan_json(self, *args):
        r = self.proj.run("plan", "--format", "json", *args)
        doc = json.loads(r.stdout)
        return r.status, {s["name"]: s for s in doc["secrets"]}, doc


@pytest.fixture
def world(proj):
    return World(proj)


def test_plan_apply_age_gate_rotate_cycle(proj, world):
    # missing: plan shows drift, run refuses pointing at apply
    status, items, doc = world.plan_json()
    assert status == 2 and doc["in_sync"] is False and doc["environment"] == "dev"
    assert items["TEST_DB_PASSWORD"]["state"] == "missing"
    assert items["TEST_DB_PASSWORD"]["action"] == "create"
    assert items["EPHEMERAL"]["kind"] == "generated" and items["EPHEMERAL"]["action"] == "none"
    assert "API_TOKEN" not in items            # scoped to prod only
    r = world.run("run", "--", "true")
    assert r.status == 125 and "TEST_DB_PASSWORD" in r.stderr and "secrets-run apply" in r.stderr, r

    # apply creates; a second apply changes nothing and says so
    r = world.run("apply")
    assert r.status == 0 and "TEST_DB_PASSWORD: created" in r.stdout, r
    assert world.versions("TEST_DB_PASSWORD") == [1]
    writes = audit_records(proj, "secret.write")
    assert [(w["command"], w["name"], w["action"], w["version"]) for w in writes] == \
        [("apply", "TEST_DB_PASSWORD", "create", 1)]
    before = sha256(world.store)
    r = world.run("apply")
    assert r.status == 0 and "nothing to do" in r.stdout, r
    assert sha256(world.store) == before
    assert len(audit_records(proj, "secret.write")) == 1      # nothing written, nothing recorded
    status, items, doc = world.plan_json()
    assert status == 0 and doc["in_sync"] is True
    assert items["TEST_DB_PASSWORD"]["version"] == 1
    assert items["TEST_DB_PASSWORD"]["rotation"]["status"] == "ok"
    r = world.run("plan")
    assert r.status == 0 and "In sync" in r.stdout and "\033[" not in r.stdout, r

    # the step gets the stored value, the same on every run
    check = proj.script("""
        report LEN "$(wc -c < "$TEST_DB_PASSWORD_FILE")"
        report SUM "$(sha256sum < "$TEST_DB_PASSWORD_FILE" | cut -c1-16)"
        """)
    assert world.run("run", "--", check).status == 0
    first = proj.report()
    (proj.data / "report").unlink()
    assert world.run("run", "--", check).status == 0
    assert proj.report() == first and first["LEN"] == "32"

    # 40 days old: overdue; run warns (stderr) and passes
    world.age("TEST_DB_PASSWORD", 40)
    status, items, _ = world.plan_json()
    assert status == 2 and items["TEST_DB_PASSWORD"]["rotation"]["status"] == "overdue"
    assert items["TEST_DB_PASSWORD"]["action"] == "rotate"
    assert 39 * DAY < items["TEST_DB_PASSWORD"]["age_seconds"] < 41 * DAY
    r = world.run("plan")
    assert r.status == 2 and "overdue by 10d" in r.stdout, r
    r = world.run("run", "--", "true")
    assert r.status == 0, r
    assert "TEST_DB_PASSWORD is 40d old, past rotation.max_age (30d)" in r.stderr
    assert "team-db" in r.stderr

    # 50 days old: past fail_after; run refuses with 125 naming secret, age, threshold, owner
    world.age("TEST_DB_PASSWORD", 50)
    r = world.run("run", "--", "true")
    assert r.status == 125, r
    for part in ("TEST_DB_PASSWORD", "50d", "fail_after (45d)", "team-db"):
        assert part in r.stderr, (part, r)
    line = next(i for i, l in enumerate((proj.dir / "secrets.yaml").read_text().splitlines(), 1)
                if l.strip().startswith("TEST_DB_PASSWORD:"))
    assert f"secrets.yaml:{line}: rotation: TEST_DB_PASSWORD is 50d old" in r.stderr, r
    audit = (proj.base / "state" / "secrets-run" / "audit.jsonl").read_text().splitlines()
    gates = [json.loads(line) for line in audit if '"rotation.gate"' in line]
    assert [g["status"] for g in gates] == ["overdue", "failing"], gates
    assert gates[-1]["name"] == "TEST_DB_PASSWORD" and gates[-1]["fail_after"] == 45 * DAY

    # apply rotates; run passes again with the new value
    r = world.run("apply")
    assert r.status == 0 and "TEST_DB_PASSWORD: rotated" in r.stdout, r
    assert world.versions("TEST_DB_PASSWORD") == [1, 2]
    assert world.run("plan").status == 0
    assert world.run("run", "--", check).status == 0
    assert proj.report()["SUM"] != first["SUM"]


def test_concurrent_applies_make_exactly_one_version(proj, world):
    assert world.run("apply").status == 0
    world.age("TEST_DB_PASSWORD", 40)
    procs = [proj.spawn("apply") for _ in range(6)]
    results = [p.wait() for p in procs]
    assert all(r.status == 0 for r in results), results
    assert world.versions("TEST_DB_PASSWORD") == [1, 2]
    rotated = sum("TEST_DB_PASSWORD: rotated" in r.stdout for r in results)
    assert rotated == 1, [r.stdout for r in results]
    writes = audit_records(proj, "secret.write")
    assert [(w["action"], w["version"]) for w in writes] == [("create", 1), ("rotate", 2)]
    r = proj.run("audit", "verify", proj.base / "state" / "secrets-run" / "audit.jsonl")
    assert r.status == 0, r


def test_concurrent_applies_create_once(proj, world):
    procs = [proj.spawn("apply") for _ in range(6)]
    results = [p.wait() for p in procs]
    assert all(r.status == 0 for r in results), results
    assert world.versions("TEST_DB_PASSWORD") == [1]


def test_rotate_one_and_its_refusals(proj, world):
    r = world.run("rotate", "TEST_DB_PASSWORD")            # absent: created
    assert r.status == 0 and "created" in r.stdout, r
    r = world.run("rotate", "TEST_DB_PASSWORD")            # fresh, but rotate means now
    assert r.status == 0 and "version 1 -> 2" in r.stdout, r
    assert world.versions("TEST_DB_PASSWORD") == [1, 2]
    writes = audit_records(proj, "secret.write")
    assert [(w["command"], w["action"], w["version"]) for w in writes] == [("rotate", "create", 1),
                                                                            ("rotate", "rotate", 2)]
    r = world.run("rotate", "EPHEMERAL")
    assert r.status == 1 and "generated afresh for every run" in r.stderr, r
    r = world.run("rotate", "API_TOKEN")
    assert r.status == 1 and "rotate it by hand" in r.stderr and "team-web" in r.stderr, r
    r = world.run("rotate", "NOPE")
    assert r.status == 1 and "no secret 'NOPE'" in r.stderr, r
    r = world.run("rotate")
    assert r.status == 1, r


def test_secrets_it_cannot_create_are_for_a_person(proj, world):
    r = world.run("plan", "-e", "prod")
    assert r.status == 2 and "create by hand: owner team-web" in r.stdout, r
    value = proj.secret()
    assert proj.run("store", "set", "API_TOKEN", input=value).status == 0
    world.age("API_TOKEN", 33)
    r = world.run("apply", "-e", "prod")
    assert r.status == 0, r
    assert "API_TOKEN" in r.stderr and "rotate by hand: owner team-web, overdue by 3d" in r.stderr
    assert world.versions("API_TOKEN") == [1]             # not touched
    status, items, doc = world.plan_json("--all")
    assert doc["environment"] is None and set(items) == {"TEST_DB_PASSWORD", "API_TOKEN", "EPHEMERAL"}
    assert items["API_TOKEN"]["action"] == "rotate_by_hand" and status == 2
    # --dry-run is plan: same report, nothing written
    before = sha256(world.store)
    r = world.run("apply", "--dry-run", "--all")
    assert r.status == 2 and "Drift: " in r.stdout and sha256(world.store) == before, r


def test_from_with_generate_store_and_mistakes(proj):
    proj.manifest("""
        version: 1
        defaults: {environment: dev}
        backends: {vaultish: {type: file, path: other/store}}
        secrets:
          KEPT:
            from: vaultish:KEPT_AT_HERE
            generate: {length: 40, charset: hex, store: true}
            owner: me
        """)
    (proj.dir / "other").mkdir()
    assert proj.run("store", "init", "--store", "other/store").status == 0
    r = proj.run("apply")
    assert r.status == 0 and "KEPT: created in backend 'vaultish'" in r.stdout, r
    r = proj.run("store", "list", "--store", "other/store", "--format", "json")
    assert [e["name"] for e in json.loads(r.stdout)] == ["KEPT_AT_HERE"]
    proj.manifest("""
        version: 1
        backends: {b: {type: file}}
        secrets:
          BOTH: {from: "b:X", generate: {length: 40}, owner: me}
        """)
    r = proj.run("check")
    assert r.status == 2 and "add 'store: true'" in r.stdout + r.stderr, r
    proj.manifest("""
        version: 1
        backends: {b: {type: file}}
        secrets:
          PINNED: {from: "b:X?version=1", generate: {length: 40, store: true}, owner: me}
        """)
    r = proj.run("check")
    assert r.status == 1 and "SR112" in r.stdout and "pins a version" in r.stdout, r


def test_unknown_environment_and_arguments(proj, world):
    r = world.run("plan", "-e", "nope")
    assert r.status == 1 and "unknown environment 'nope'" in r.stderr, r
    r = world.run("plan", "extra")
    assert r.status == 1, r
    r = world.run("plan", "--only", "X")
    assert r.status == 1 and "does not apply to 'plan'" in r.stderr, r


# ---- store export / import ----

def test_export_import_round_trip_keeps_versions_times_and_bytes(proj, tmp_path):
    assert proj.run("store", "init").status == 0
    text = [proj.secret() for _ in range(3)]
    for v in text:
        assert proj.run("store", "set", "TEXT", input=v).status == 0
    blob = os.urandom(64) + b"\0tail-bytes"
    assert proj.run("store", "set", "BLOB", input=blob).status == 0
    path = proj.data / "backup.json"
    r = proj.run("store", "export", path)
    assert r.status == 0 and "exported 2 secrets (4 versions)" in r.stderr, r
    doc = json.loads(path.read_text())
    assert doc["format"] == "secrets-run-store" and doc["version"] == 1
    assert [v["version"] for v in doc["secrets"]["TEXT"]] == [1, 2, 3]
    assert "value_base64" in doc["secrets"]["BLOB"][0]
    # refuses a terminal-less overwrite and a terminal
    r = proj.run("store", "export", path)
    assert r.status == 1 and "exists; not overwriting" in r.stderr, r

    other = tmp_path / "other"
    other.mkdir()
    store2 = other / "store"
    assert proj.run("store", "init", "--store", store2).status == 0
    r = proj.run("store", "import", "--store", store2, path)
    assert r.status == 0 and "imported 2 secrets (4 versions)" in r.stderr, r
    r = proj.run("store", "export", "--store", store2, proj.data / "again.json")
    again = json.loads((proj.data / "again.json").read_text())
    assert again["secrets"] == doc["secrets"]
    # from stdin too, and names already there need --replace (nothing changes without)
    before = sha256(store2)
    r = proj.run("store", "import", "--store", store2, input=path.read_bytes())
    assert r.status == 1 and "already in" in r.stderr and "--replace" in r.stderr, r
    assert sha256(store2) == before
    r = proj.run("store", "history", "TEXT", "--store", store2, "--format", "json")
    assert [e["created"] for e in json.loads(r.stdout)] == [v["created"] for v in reversed(doc["secrets"]["TEXT"])]


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(format="other"), "not a secrets-run store export"),
    (lambda d: d.update(version=2), "document version 2"),
    (lambda d: d["secrets"]["A"].append(dict(d["secrets"]["A"][0])), "above the previous one"),
    (lambda d: d["secrets"]["A"][0].update(created="yesterday"), "'created' must be a time"),
    (lambda d: d["secrets"]["A"][0].update(value_base64="AAAA"), "exactly one of 'value' and 'value_base64'"),
    (lambda d: d["secrets"].update({"bad-name": d["secrets"]["A"]}), "not a valid name"),
    (lambda d: d["secrets"]["A"][0].update(value=""), "the value is empty"),
    (lambda d: d["secrets"]["A"][0].update(created="2026-01-02T03:04:05+5:3"), "'created' must be a time"),
    (lambda d: d["secrets"]["A"][0].update(created="2026-01-02T03:04:05+24:00"), "'created' must be a time"),
    (lambda d: d["secrets"]["A"][0].update(created="2099-01-02T03:04:05Z"), "in the future"),
    (lambda d: d["secrets"]["A"][0].update(created="1950-01-02T03:04:05Z"), "before 1970"),
    (lambda d: d["secrets"]["A"][0].update(version=2 ** 60), "at most"),
])
def test_import_rejects_bad_documents_and_changes_nothing(proj, mutate, message):
    assert proj.run("store", "init").status == 0
    value = proj.secret()
    doc = {"format": "secrets-run-store", "version": 1,
           "secrets": {"A": [{"version": 1, "created": "2026-01-02T03:04:05Z", "value": value}]}}
    mutate(doc)
    path = proj.data / "doc.json"
    path.write_text(json.dumps(doc))
    store = proj.dir / ".secrets-run" / "store"
    before = sha256(store)
    r = proj.run("store", "import", path)
    assert r.status == 1 and message in r.stderr, r
    assert sha256(store) == before


def test_import_accepts_offsets_and_rejects_garbage(proj):
    assert proj.run("store", "init").status == 0
    value = proj.secret()
    doc = {"format": "secrets-run-store", "version": 1,
           "secrets": {"A": [{"version": 7, "created": "2026-01-02T05:04:05.25+02:00", "value": value}]}}
    path = proj.data / "doc.json"
    path.write_text(json.dumps(doc))
    assert proj.run("store", "import", path).status == 0
    r = proj.run("store", "history", "A", "--format", "json")
    assert json.loads(r.stdout) == [{"version": 7, "created": "2026-01-02T03:04:05Z", "created_unix": 1767323045}]
    path.write_text('{"format": "secrets-run-store", "version": 1, "secrets": {"A": [' + json.dumps(value))
    r = proj.run("store", "import", path)
    assert r.status == 1 and "not valid JSON" in r.stderr and value not in r.stderr, r


def test_apply_writes_nothing_when_the_audit_log_refuses(proj, world):
    blocker = proj.data / "not-a-dir"
    blocker.write_text("")
    before = sha256(world.store)
    r = world.run("apply", env={"SECRETS_RUN_AUDIT_LOG": str(blocker / "audit.jsonl")})
    assert r.status == 1 and "audit log" in r.stderr, r
    assert sha256(world.store) == before


def test_rollback_converges_back_and_apply_keeps_it(proj, world):
    assert world.run("apply").status == 0
    assert world.run("rotate", "TEST_DB_PASSWORD").status == 0
    doc = world.export()
    v1, v2 = [v["value"] for v in doc["secrets"]["TEST_DB_PASSWORD"]]
    assert v1 != v2
    r = proj.run("store", "rollback", "TEST_DB_PASSWORD", "--to", "1")
    assert r.status == 0, r
    latest = world.export()["secrets"]["TEST_DB_PASSWORD"][-1]
    assert latest["version"] == 3 and latest["value"] == v1
    # a rollback is a new version with a new time: in sync, and apply leaves it alone
    assert world.run("plan").status == 0
    r = world.run("apply")
    assert r.status == 0 and "nothing to do" in r.stdout, r
    step = proj.script(f"""report SAME "$(same "$TEST_DB_PASSWORD_FILE" '{proj.expect(v1)}')"\n""")
    assert world.run("run", "--", step).status == 0
    assert proj.report()["SAME"] == "yes"


def test_import_refuses_repeated_keys(proj):
    assert proj.run("store", "init").status == 0
    value, other = proj.secret(), proj.secret()
    entry = '{"version": 1, "created": "2026-01-02T03:04:05Z", "value": "%s"}'
    text = ('{"format": "secrets-run-store", "version": 1, "secrets": {"A": [' + entry % value +
            '], "A": [' + entry % other + ']}}')
    path = proj.data / "dup.json"
    path.write_text(text)
    r = proj.run("store", "import", path)
    assert r.status == 1 and "repeats a key" in r.stderr, r


def test_a_stored_value_too_short_to_mask_is_drift(proj, world):
    assert world.run("apply").status == 0
    doc = world.export()
    doc["secrets"]["TEST_DB_PASSWORD"][0]["value"] = "abc"
    path = proj.data / "short.json"
    path.write_text(json.dumps(doc))
    assert proj.run("store", "import", "--replace", path).status == 0
    r = world.run("plan")
    assert r.status == 2 and "shorter than policy.min_secret_length" in r.stdout, r
    assert world.run("run", "--", "true").status == 125
    r = world.run("apply", "--format", "json")
    assert r.status == 0, r
    out = json.loads(r.stdout)
    assert out["actions"][0]["action"] == "rotate" and out["in_sync"] is True
    assert out["secrets"][0]["state"] == "present" and out["secrets"][0]["action"] == "none"
    assert world.run("plan").status == 0
    assert world.run("run", "--", "true").status == 0
