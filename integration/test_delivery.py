"""Delivery of secrets to the step: files in $SECRETS_DIR, sealed memfds, environment variables,
from the env, exec and generate backends. Steps compare what they received with the expected
value (a file in data/) and report yes/no; they never print a value."""

import json
import os
import re

import pytest

from util import fs_type


def exec_backend(provider):
    return f"p: {{type: exec, command: [{json.dumps(str(provider))}]}}"


def test_file_delivery_value_modes_and_location(proj):
    value = proj.secret()
    provider = proj.provider({"team/api": value})
    expected = proj.expect(value)
    proj.standard_manifest(
        secrets_block='API_TOKEN: {from: "p:team/api", owner: team-a}',
        backends=exec_backend(provider))
    step = proj.script(f"""
        report SECRETS_DIR "$SECRETS_DIR"
        report file_var "$API_TOKEN_FILE"
        report same "$(same "$API_TOKEN_FILE" '{expected}')"
        report file_mode "$(stat -c %a "$API_TOKEN_FILE")"
        report file_type "$(stat -c %F "$API_TOKEN_FILE")"
        report dir_mode "$(stat -c %a "$SECRETS_DIR")"
        report dir_type "$(stat -c %F "$SECRETS_DIR")"
        report fs "$(stat -f -c %T "$SECRETS_DIR")"
        report env_var "${{API_TOKEN+set}}"
        report fd_var "${{API_TOKEN_FD+set}}"
        """)
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    rep = proj.report()
    assert rep["same"] == "yes"
    assert rep["file_var"] == rep["SECRETS_DIR"] + "/API_TOKEN"
    assert rep["file_mode"] == "400"
    assert rep["file_type"] == "regular file"
    assert rep["dir_mode"] == "700"
    assert rep["dir_type"] == "directory"
    assert rep["fs"] == "tmpfs", "the secrets directory must be in memory"
    assert rep["env_var"] == "" and rep["fd_var"] == "", "file delivery only"
    assert not os.path.exists(rep["SECRETS_DIR"]), "secrets directory left after the run"


def test_file_delivery_lowercase_as_names_file_and_uppercases_variable(proj):
    value = proj.secret()
    provider = proj.provider({"x": value})
    expected = proj.expect(value)
    proj.standard_manifest(
        secrets_block='API: {from: "p:x", owner: team-a, as: api_token}',
        backends=exec_backend(provider))
    step = proj.script(f"""
        report SECRETS_DIR "$SECRETS_DIR"
        report file_var "$API_TOKEN_FILE"
        report same "$(same "$SECRETS_DIR/api_token" '{expected}')"
        """)
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    rep = proj.report()
    assert rep["file_var"] == rep["SECRETS_DIR"] + "/api_token"
    assert rep["same"] == "yes"


def test_secrets_dir_under_xdg_runtime_dir_on_tmpfs(proj):
    if not proj.runtime:
        pytest.skip("/dev/shm is not a tmpfs here: no private XDG_RUNTIME_DIR")
    proj.standard_manifest("TOKEN: {generate: {length: 32}}")
    step = proj.script('report SECRETS_DIR "$SECRETS_DIR"\n')
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    assert proj.report()["SECRETS_DIR"].startswith(f"{proj.runtime}/secrets-run/")


@pytest.mark.parametrize("runtime", ["unset", "not-tmpfs"])
def test_secrets_dir_falls_back_to_dev_shm(proj, runtime):
    if runtime == "not-tmpfs":
        rt = proj.data / "runtime"
        rt.mkdir(mode=0o700)
        if fs_type(rt) == "tmpfs":
            pytest.skip("the test's data directory is itself on a tmpfs")
        env = {"XDG_RUNTIME_DIR": str(rt)}
    else:
        env = {"XDG_RUNTIME_DIR": None}
    proj.standard_manifest("TOKEN: {generate: {length: 32}}")
    step = proj.script("""
        report SECRETS_DIR "$SECRETS_DIR"
        report file_mode "$(stat -c %a "$TOKEN_FILE")"
        """)
    r = proj.run("run", "--", step, env=env)
    assert r.status == 0, r
    rep = proj.report()
    assert rep["SECRETS_DIR"].startswith(f"/dev/shm/secrets-run-{os.getuid()}/")
    assert rep["file_mode"] == "400"
    assert not os.path.exists(rep["SECRETS_DIR"])


def test_fd_delivery_sealed_memfd(proj):
    value = proj.secret(32)
    provider = proj.provider({"sign": value})
    expected = proj.expect(value)
    proj.standard_manifest(
        secrets_block='SIGNING_KEY: {from: "p:sign", owner: team-a, deliver: fd}',
        backends=exec_backend(provider))
    step = proj.script(f"""
        report fd "$SIGNING_KEY_FD"
        report target "$(readlink /proc/self/fd/"$SIGNING_KEY_FD")"
        report same_proc "$(same /proc/self/fd/"$SIGNING_KEY_FD" '{expected}')"
        if cmp -s - '{expected}' <&"$SIGNING_KEY_FD"; then report same_read yes; else report same_read no; fi
        if (printf x >> /proc/self/fd/"$SIGNING_KEY_FD") 2>/dev/null; then report writable yes; else report writable no; fi
        report same_after "$(same /proc/self/fd/"$SIGNING_KEY_FD" '{expected}')"
        report file_var "${{SIGNING_KEY_FILE+set}}"
        report env_var "${{SIGNING_KEY+set}}"
        """)
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    rep = proj.report()
    assert int(rep["fd"]) >= 3
    assert "memfd:" in rep["target"]
    assert rep["same_proc"] == "yes"
    assert rep["same_read"] == "yes"
    assert rep["writable"] == "no", "a sealed memfd must refuse writes"
    assert rep["same_after"] == "yes"
    assert rep["file_var"] == "" and rep["env_var"] == ""


def test_env_delivery_from_env_backend_removes_source_variable(proj):
    value = proj.secret()
    other = proj.secret()
    expected = proj.expect(value)
    proj.standard_manifest(
        backends="ci: {type: env}",
        secrets_block="""
            DEPLOY_KEY: {from: "ci:SRC_DEPLOY_KEY", owner: team-a, deliver: env}
            PROD_ONLY: {from: "ci:SRC_PROD_ONLY", owner: team-a, environments: [prod], approved_by: [alice]}
            """,
        policy="allow_env_delivery: true")
    step = proj.script(f"""
        if [ "$DEPLOY_KEY" = "$(cat '{expected}')" ]; then report same yes; else report same no; fi
        report src "${{SRC_DEPLOY_KEY+present}}"
        report src_out_of_scope "${{SRC_PROD_ONLY+present}}"
        report prod_only "${{PROD_ONLY+set}}${{PROD_ONLY_FILE+set}}"
        report unrelated "${{UNRELATED_VAR-}}"
        report file_var "${{DEPLOY_KEY_FILE+set}}"
        """)
    keep = "kept-" + os.urandom(4).hex()
    r = proj.run("run", "--", step, env={"SRC_DEPLOY_KEY": value, "SRC_PROD_ONLY": other,
                                         "UNRELATED_VAR": keep})
    assert r.status == 0, r
    rep = proj.report()
    assert rep["same"] == "yes"
    assert rep["src"] == "", "the env-backend source variable reached the step"
    assert rep["src_out_of_scope"] == "", \
        "every variable an env-backed secret of the manifest reads must be removed"
    assert rep["prod_only"] == ""
    assert rep["unrelated"] == keep, "the rest of the caller's environment passes through"
    assert rep["file_var"] == ""


def test_env_backend_file_delivery_and_no_value_in_child_environment(proj):
    value = proj.secret()
    expected = proj.expect(value)
    proj.standard_manifest(backends="ci: {type: env}",
                           secrets_block='NPM_TOKEN: {from: "ci:NPM_SRC", owner: team-a}')
    dump = proj.data / "env-dump"
    step = proj.script(f"""
        report same "$(same "$NPM_TOKEN_FILE" '{expected}')"
        env > '{dump}'
        cat /proc/self/environ > '{dump}.proc'
        """)
    r = proj.run("run", "--", step, env={"NPM_SRC": value})
    assert r.status == 0, r
    assert proj.report()["same"] == "yes"
    for f in (dump, dump.with_name("env-dump.proc")):
        assert value.encode() not in f.read_bytes(), f"the value is in the child's environment ({f.name})"
    assert b"NPM_SRC=" not in dump.read_bytes()


def test_env_delivery_refused_without_policy(proj):
    value = proj.secret()
    proj.standard_manifest(backends="ci: {type: env}",
                           secrets_block='DEPLOY_KEY: {from: "ci:SRC_KEY", owner: team-a, deliver: env}')
    marker = proj.data / "ran"
    r = proj.run("run", "--", "touch", marker, env={"SRC_KEY": value})
    assert r.status == 125, r
    assert not marker.exists(), "the step ran although policy forbids env delivery"
    assert "DEPLOY_KEY" in r.stderr or "SR102" in r.stderr


def test_all_three_delivery_kinds_in_one_run(proj):
    a, b, c = proj.secret(), proj.secret(), proj.secret()
    provider = proj.provider({"a": a, "b": b})
    ea, eb, ec = proj.expect(a), proj.expect(b), proj.expect(c)
    proj.standard_manifest(
        backends=exec_backend(provider) + "\nci: {type: env}",
        secrets_block="""
            AS_FILE: {from: "p:a", owner: t}
            AS_FD: {from: "p:b", owner: t, deliver: fd}
            AS_ENV: {from: "ci:SRC_C", owner: t, deliver: env}
            """,
        policy="allow_env_delivery: true")
    step = proj.script(f"""
        report file "$(same "$AS_FILE_FILE" '{ea}')"
        report fd "$(same /proc/self/fd/"$AS_FD_FD" '{eb}')"
        if [ "$AS_ENV" = "$(cat '{ec}')" ]; then report env yes; else report env no; fi
        """)
    r = proj.run("run", "--", step, env={"SRC_C": c})
    assert r.status == 0, r
    assert proj.report() == {"file": "yes", "fd": "yes", "env": "yes"}


def test_exec_backend_strips_exactly_one_trailing_newline(proj):
    value = proj.secret() + "\n"          # the provider prints value + "\n\n"
    provider = proj.provider({"nl": value})
    expected = proj.expect(value)
    proj.standard_manifest(secrets_block='NL: {from: "p:nl", owner: t}',
                           backends=exec_backend(provider))
    step = proj.script(f'report same "$(same "$NL_FILE" \'{expected}\')"\n')
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    assert proj.report()["same"] == "yes"


def test_exec_backend_appends_path_to_configured_argv(proj):
    value = proj.secret()
    expected = proj.expect(value)
    provider = proj.data / "argv-provider.sh"
    provider.write_text(
        "#!/bin/sh\n"
        '[ "$#" -eq 2 ] && [ "$1" = --flag ] && [ "$2" = some/deep/path ] || '
        '{ echo "bad argv: $*" >&2; exit 9; }\n'
        f"cat '{expected}'\n")
    provider.chmod(0o755)
    proj.standard_manifest(
        backends=f"p: {{type: exec, command: [{json.dumps(str(provider))}, --flag]}}",
        secrets_block='DEEP: {from: "p:some/deep/path", owner: t}')
    step = proj.script(f'report same "$(same "$DEEP_FILE" \'{expected}\')"\n')
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    assert proj.report()["same"] == "yes"


CHARSETS = {
    "alnum": r"[A-Za-z0-9]",
    "hex": r"[0-9a-fA-F]",
    "base64url": r"[A-Za-z0-9_-]",
    "ascii": r"[\x21-\x7e]",
}


def _read_generated(proj, names):
    values = {}
    for name in names:
        v = (proj.data / f"gen-{name}").read_bytes()
        proj.register(v)
        values[name] = v.decode("latin-1")
    return values


def test_generated_values_length_charset_and_fresh_per_run(proj):
    proj.standard_manifest("""
        GEN_ALNUM: {generate: {length: 40, charset: alnum}}
        GEN_HEX: {generate: {length: 32, charset: hex}}
        GEN_URL: {generate: {length: 24, charset: base64url}, deliver: fd}
        GEN_ASCII: {generate: {length: 20, charset: ascii}}
        """)
    # The step copies each value to data/ (never to its output) so the test can inspect it:
    # a leak the output guard would report, so the guard is off for this instrumentation.
    step = proj.script("""
        cat "$GEN_ALNUM_FILE" > "$DATA/gen-GEN_ALNUM"
        cat "$GEN_HEX_FILE" > "$DATA/gen-GEN_HEX"
        cat <&"$GEN_URL_FD" > "$DATA/gen-GEN_URL"
        cat "$GEN_ASCII_FILE" > "$DATA/gen-GEN_ASCII"
        """)
    lengths = {"GEN_ALNUM": 40, "GEN_HEX": 32, "GEN_URL": 24, "GEN_ASCII": 20}
    charsets = {"GEN_ALNUM": "alnum", "GEN_HEX": "hex", "GEN_URL": "base64url",
                "GEN_ASCII": "ascii"}
    runs = []
    for _ in range(2):
        r = proj.run("run", "--guard", "off", "--", step)
        assert r.status == 0, r
        runs.append(_read_generated(proj, lengths))
    for name, length in lengths.items():
        for values in runs:
            v = values[name]
            assert len(v) == length, f"{name}: length {len(v)}, expected {length}"
            cls = CHARSETS[charsets[name]]
            assert re.fullmatch(f"{cls}{{{length}}}", v), f"{name}: not all {charsets[name]}"
        assert runs[0][name] != runs[1][name], f"{name}: same value in two runs"


def test_generated_defaults_are_32_alnum(proj):
    proj.standard_manifest("GEN: {generate: {}}")
    step = proj.script('cat "$GEN_FILE" > "$DATA/gen-GEN"\n')
    r = proj.run("run", "--guard", "off", "--", step)   # the copy to data/ is the test's, not a leak
    assert r.status == 0, r
    v = _read_generated(proj, ["GEN"])["GEN"]
    assert re.fullmatch(r"[A-Za-z0-9]{32}", v), f"default generated value has length {len(v)}"


def test_no_secrets_directory_left_after_failing_step(proj):
    proj.standard_manifest("TOKEN: {generate: {length: 32}}")
    step = proj.script('report SECRETS_DIR "$SECRETS_DIR"\nexit 3\n')
    r = proj.run("run", "--", step)
    assert r.status == 3, r
    d = proj.report()["SECRETS_DIR"]
    assert d and not os.path.exists(d)


def tcp_sockets_to(port, table):
    """inode -> state of the sockets whose remote port is port, from /proc/net/tcp and
    /proc/net/tcp6 text (their header lines skipped)."""
    found = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) > 9 and fields[0].endswith(":") and int(fields[2].rsplit(":", 1)[1], 16) == port:
            found[fields[9]] = fields[3]
    return found


def test_exec_provider_has_only_fds_0_to_2_while_vault_keeps_a_connection(proj, vault):
    """libcurl's kept-alive connection to Vault is not close-on-exec: a provider run after a
    Vault fetch must still see only its stdin, stdout and stderr. The provider also lists
    its parent's (secrets-run's) fds and the host's TCP table, so the test knows the
    connection really was open while it ran."""
    if os.geteuid() != 0:
        pytest.skip("reading the fds of secrets-run (not dumpable) needs root")
    kv_value, provided = proj.secret(), proj.secret()
    vault.kv2_put("app", {"k": kv_value})
    value_file = proj.expect(provided, "provided")
    fds, parent, tcp = proj.data / "provider-fds", proj.data / "parent-fds", proj.data / "tcp"
    # sh -c: no script file open in the shell. ls lists the shell's fds, not its own, from a
    # subshell, which does the redirection (dash keeps a copy of a redirected fd meanwhile)
    script = (f"(ls /proc/$$/fd) > '{fds}'; ls -l /proc/$PPID/fd > '{parent}' 2>&1; "
              f"cat /proc/net/tcp /proc/net/tcp6 > '{tcp}' 2> /dev/null; cat '{value_file}'")
    ca = f"ca_cert: {vault.ca_path}, " if vault.ca_path else ""
    proj.standard_manifest(
        backends=f"""
            v: {{type: vault, address: "{vault.addr}", {ca}timeout: 5s, auth: {{method: token}}}}
            p: {{type: exec, command: [/bin/sh, -c, {json.dumps(script)}, provider]}}
            """,
        # the Vault secret first: its connection is open when the provider runs
        secrets_block="""
            V: {from: "v:secret/data/app#k", owner: t}
            P: {from: "p:anything", owner: t}
            """)
    expected_v = proj.expect(kv_value)
    step = proj.script(f"""
        report same_V "$(same "$V_FILE" '{expected_v}')"
        report same_P "$(same "$P_FILE" '{value_file}')"
        """)
    r = proj.run("run", "--", step, env={"VAULT_TOKEN": proj.register(vault.create_token())})
    assert r.status == 0, r
    assert proj.report() == {"same_V": "yes", "same_P": "yes"}
    parent_sockets = set(re.findall(r"socket:\[(\d+)\]", parent.read_text()))
    to_vault = tcp_sockets_to(int(vault.addr.rsplit(":", 1)[1]), tcp.read_text())
    established = {inode for inode, state in to_vault.items() if state == "01"}
    assert parent_sockets & established, (
        "no connection to Vault was open in secrets-run while the provider ran: the test "
        f"proves nothing (parent's sockets {sorted(parent_sockets)}, to Vault {to_vault})")
    assert sorted(fds.read_text().split(), key=int) == ["0", "1", "2"]


def test_secrets_tmpfs_is_noswap_where_the_kernel_has_it(proj):
    """$SECRETS_DIR's private tmpfs is mounted noswap on Linux 6.4 and later: its files never
    reach a swap device."""
    major, minor = (int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    if (major, minor) < (6, 4):
        pytest.skip("tmpfs has no noswap option before Linux 6.4")
    proj.standard_manifest('T: {generate: {length: 32}, owner: t}')
    step = proj.script("""
        report options "$(awk -v d="$SECRETS_DIR" '$5 == d { print $NF }' /proc/self/mountinfo)"
        report fstype "$(awk -v d="$SECRETS_DIR" '$5 == d { for (i = 7; i < NF; i++) if ($i == "-") print $(i + 1) }' /proc/self/mountinfo)"
        """)
    r = proj.run("run", "--sandbox", "strict", "--", step)
    if r.status == 125 and "strict" in r.stderr:
        pytest.skip("this host cannot have the full sandbox")
    assert r.status == 0, r
    rep = proj.report()
    assert rep["fstype"] == "tmpfs", rep
    assert "noswap" in rep["options"].split(","), rep


@pytest.mark.parametrize("impostor", ["someone-elses", "open-to-all"])
def test_a_base_directory_planted_by_someone_else_costs_a_warning_not_the_run(proj, impostor):
    """Another local user can pre-create the shared base ($XDG_RUNTIME_DIR/secrets-run or
    /dev/shm/secrets-run-<uid>) before us: the run refuses to use it but runs, in a fresh base
    of its own (removed after), with one warning naming the one it refused."""
    if not proj.runtime:
        pytest.skip("no private tmpfs XDG_RUNTIME_DIR for this test")
    if impostor == "someone-elses" and os.geteuid() != 0:
        pytest.skip("planting a directory owned by another uid needs root")
    planted = proj.runtime / "secrets-run"
    if planted.exists():
        import shutil
        shutil.rmtree(planted)
    planted.mkdir(mode=0o777 if impostor == "open-to-all" else 0o755)
    planted.chmod(0o777 if impostor == "open-to-all" else 0o755)
    if impostor == "someone-elses":
        os.chown(planted, 65534, 65534)
    proj.standard_manifest("TOKEN: {generate: {length: 32}}")
    step = proj.script("""
        report SECRETS_DIR "$SECRETS_DIR"
        report bytes "$(wc -c < "$TOKEN_FILE")"
        """)
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    rep = proj.report()
    assert rep["bytes"] == "32"
    assert rep["SECRETS_DIR"].startswith(f"{planted}."), rep
    warnings = [x for x in r.stderr.splitlines() if "is not this user's own private directory" in x]
    assert len(warnings) == 1 and str(planted) in warnings[0], r.stderr
    assert not [p for p in proj.runtime.iterdir() if p.name.startswith("secrets-run.")], "the fresh base is removed"
    os.chmod(planted, 0o700)
    if impostor == "someone-elses":
        os.chown(planted, os.geteuid(), os.getegid())
