"""The manifest's JSON Schema (docs/secrets-run.schema.json, draft 2020-12) against every
manifest in examples/ and in the docs' YAML blocks, against the keys and values the manifest
loader (agent/manifest.c) accepts, and against `secrets-run check` on manifests that break one
rule each: the schema, check and the docs say the same thing."""

import json
import re
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "docs" / "secrets-run.schema.json"
MANIFEST_C = ROOT / "agent" / "manifest.c"


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2's core schema, as secrets-run and yaml-language-server read a manifest: only
    true/false are booleans (`off` is the string secrets-run's enums take)."""


Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))


def load(text):
    return yaml.load(text, Loader=Yaml12Loader)


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return jsonschema.Draft202012Validator(schema)


def errors(validator, doc):
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(doc)]


def example_manifests():
    found = sorted(p for p in (ROOT / "examples").rglob("*.yaml")
                   if isinstance(load(p.read_text()), dict) and "secrets" in load(p.read_text()))
    assert len(found) >= 4, found
    return found


def doc_manifests():
    """(where, text) of every ```yaml block in docs/ and the README that is a manifest."""
    out = []
    for md in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        for i, m in enumerate(re.finditer(r"```ya?ml\n(.*?)```", md.read_text(), re.S)):
            try:
                doc = load(m.group(1))
            except yaml.YAMLError:
                continue
            if isinstance(doc, dict) and doc.get("version") == 1:
                out.append((f"{md.relative_to(ROOT)} block {i + 1}", doc))
    assert len(out) >= 3, out
    return out


@pytest.mark.parametrize("path", example_manifests(), ids=lambda p: str(p.relative_to(ROOT)))
def test_example_manifests_are_valid(validator, path, secrets_run_bin):
    assert errors(validator, load(path.read_text())) == []
    # and check reads them without a schema finding (SR001-SR007)
    r = subprocess.run([str(secrets_run_bin), "check", "-f", str(path), "--format", "json"],
                       capture_output=True, text=True, timeout=30)
    findings = json.loads(r.stdout) if r.stdout.strip() else []
    assert not [f for f in findings if f["id"] <= "SR007"], findings


@pytest.mark.parametrize("where,doc", doc_manifests(), ids=lambda x: x if isinstance(x, str) else "")
def test_manifests_in_the_docs_are_valid(validator, where, doc):
    assert errors(validator, doc) == [], where


def c_keys(array_intro):
    """The strings of the C array whose declaration starts with array_intro."""
    text = MANIFEST_C.read_text()
    start = text.index(array_intro)
    body = text[start:text.index("};", start)]
    return set(re.findall(r'"([a-z0-9_]+)"', body.split("=", 1)[1]))


def c_function_keys(function):
    text = MANIFEST_C.read_text()
    start = text.index(f"static void {function}(")
    return c_keys_from(text, text.index("keys[] = {", start))


def c_keys_from(text, start):
    return set(re.findall(r'"([a-z0-9_]+)"', text[start:text.index("};", start)]))


def props(node):
    return set(node["properties"])


def defs(validator):
    return validator.schema["$defs"]


def object_branch(node):
    return next(b for b in node["anyOf"] if b.get("type") == "object")


def test_schema_keys_are_the_loaders_keys(validator):
    s = validator.schema
    d = defs(validator)
    assert props(s) - {"$schema"} == c_function_keys("load_root")
    assert props(object_branch(d["policy"])) == c_function_keys("load_policy")
    secret = object_branch(d["secret"])
    assert props(secret) == c_function_keys("load_secret")
    assert props(object_branch(secret["properties"]["generate"])) == c_function_keys("load_generate")
    assert props(secret["properties"]["when"]) == c_function_keys("load_when")
    assert props(secret["properties"]["rotation"]) == c_function_keys("load_rotation")
    assert props(object_branch(d["environment"])) == c_function_keys("load_environments")
    assert props(object_branch(d["defaults"])) == c_function_keys("load_defaults")
    # backends: the common keys and each type's own
    backend = d["backend"]
    assert props(backend) == c_keys("static const char *const backend_common_keys[]")
    per_type = {b["if"]["properties"]["type"]["const"]: props(b["then"]) - props(backend)
                for b in backend["allOf"]}
    assert set(per_type) == set(backend["properties"]["type"]["enum"])
    assert set(per_type) == c_keys("static const char *const backend_type_names[]")
    for t in ("file", "exec", "vault", "dotenv"):
        assert per_type[t] == c_keys(f"static const char *const backend_{t}_keys[]"), t
    assert per_type["env"] == set()
    # vault auth: the methods and which keys each takes
    text = MANIFEST_C.read_text()
    table = text[text.index("vault_auth_keys[] = {"):]
    table = table[:table.index("};")]
    auth = d["vault_auth"]
    for branch in auth["allOf"]:
        method = branch["if"]["properties"]["method"]["const"]
        want = {key for key, bits in re.findall(r'\{ "(\w+)", ([^}]+)\}', table)
                if bits.strip() == "~0u" or f"VAULT_AUTH_{method.upper()}" in bits}
        assert props(branch["then"]) == want, method
    # the enums
    assert set(secret["properties"]["deliver"]["enum"]) == c_keys("static const char *const delivery_names[]")
    assert set(object_branch(secret["properties"]["generate"])["properties"]["charset"]["enum"]) == \
        c_keys("static const char *const charset_names[]")
    policy = object_branch(d["policy"])["properties"]
    assert set(policy["on_leak"]["enum"]) == c_keys("static const char *const on_leak_names[]")
    assert set(policy["sandbox"]["enum"]) == c_keys("static const char *const sandbox_names[]")


BASE = {"version": 1, "environments": {"dev": None}, "policy": {"require_owner": False},
        "secrets": {"TOKEN": {"generate": {"length": 32}}}}


def with_(change):
    doc = json.loads(json.dumps(BASE))
    change(doc)
    return doc


BROKEN = {
    "unknown top-level key": lambda d: d.update(enviroments={}),
    "unknown secret key": lambda d: d["secrets"]["TOKEN"].update(stagez=["test"]),
    "unknown policy key": lambda d: d["policy"].update(on_leek="fail"),
    "bad delivery": lambda d: d["secrets"]["TOKEN"].update(deliver="pipe"),
    "bad charset": lambda d: d["secrets"]["TOKEN"]["generate"].update(charset="emoji"),
    "length out of range": lambda d: d["secrets"]["TOKEN"]["generate"].update(length=5000),
    "bad duration": lambda d: d["secrets"]["TOKEN"].update(rotation={"max_age": "30 days"}),
    "rotation without max_age": lambda d: d["secrets"]["TOKEN"].update(rotation={"fail_after": "3d"}),
    "empty stages": lambda d: d["secrets"]["TOKEN"].update(stages=[]),
    "backend without type": lambda d: d.update(backends={"b": {"path": "x"}}),
    "unknown backend type": lambda d: d.update(backends={"b": {"type": "s3"}}),
    "key of another backend type": lambda d: d.update(backends={"b": {"type": "env", "command": ["x"]}}),
    "exec command as a string": lambda d: d.update(backends={"b": {"type": "exec", "command": "pass show"}}),
    "auth key of another method": lambda d: d.update(backends={"v": {"type": "vault", "auth": {"method": "token", "jwt_env": "X"}}}),
    "bad sandbox": lambda d: d["policy"].update(sandbox="paranoid"),
    "bad secret name": lambda d: d["secrets"].update({"1BAD": None}),
    "no version": lambda d: d.pop("version"),
}


@pytest.mark.parametrize("what", sorted(BROKEN))
def test_schema_and_check_refuse_the_same(validator, tmp_path, secrets_run_bin, what):
    doc = with_(BROKEN[what])
    assert errors(validator, doc), f"the schema accepts a manifest with {what}"
    path = tmp_path / "secrets.yaml"
    path.write_text(json.dumps(doc))       # JSON is YAML
    r = subprocess.run([str(secrets_run_bin), "check", "-f", str(path)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and re.search(r"error SR00\d", r.stdout + r.stderr), (what, r)


ACCEPTED = {
    "the base": lambda d: None,
    "one string as a list": lambda d: d["secrets"]["TOKEN"].update(stages="test", environments="dev"),
    # plain (unquoted) words, as a person writes them: YAML 1.2 reads them as strings
    "yes/no booleans": "version: 1\npolicy: {require_owner: no, allow_env_delivery: yes, require_rotation: off}\n",
    "network off": "version: 1\npolicy: {network: off, sandbox: off}\n",
    "null entries": lambda d: d["secrets"].update(OTHER=None, THIRD={"generate": None}),
    "a combined duration": lambda d: d["secrets"]["TOKEN"].update(rotation={"max_age": "1d12h"}),
    "every backend": lambda d: d.update(backends={
        "f": {"type": "file", "path": "s", "key_file": "k"}, "e": {"type": "env", "timeout": "10s"},
        "x": {"type": "exec", "command": ["pass", "show"]}, "d": {"type": "dotenv", "path": ".env"},
        "v": {"type": "vault", "address": "https://v:8200", "auth": {"method": "jwt", "role": "ci", "audience": "a"}}}),
}


@pytest.mark.parametrize("what", sorted(ACCEPTED))
def test_schema_and_check_accept_the_same(validator, tmp_path, secrets_run_bin, what):
    case = ACCEPTED[what]
    text = case if isinstance(case, str) else json.dumps(with_(case))
    assert errors(validator, load(text)) == []
    path = tmp_path / "secrets.yaml"
    path.write_text(text)
    r = subprocess.run([str(secrets_run_bin), "check", "-f", str(path), "--format", "json"],
                       capture_output=True, text=True, timeout=30)
    findings = json.loads(r.stdout) if r.stdout.strip() else []
    assert not [f for f in findings if f["id"] <= "SR007"], (what, findings, r.stderr)


def test_the_docs_name_the_schema_and_the_editor_modeline():
    text = (ROOT / "docs" / "manifest.md").read_text()
    assert "secrets-run.schema.json" in text
    assert "# yaml-language-server: $schema=" in text
