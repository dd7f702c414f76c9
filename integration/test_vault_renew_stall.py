"""A slow Vault must not pause the step's output: renewals run off the supervisor's loop,
so the output keeps flowing while one waits for its answer."""

import subprocess
import time

from test_vault import assert_nothing_leaked, vault_backend


def test_slow_renewal_does_not_stall_output(proj, vault):
    """A 12 s lease is renewed at about 8 s; Vault takes 1.5 s to answer. The step prints a
    line every 50 ms for 10 s: the longest pause between lines we receive stays short."""
    vault.add_db_role("slow", ttl=12, max_ttl=60)
    proj.standard_manifest(secrets_block='DB_PASS: {from: "v:database/creds/slow#password", owner: t}',
                           backends=vault_backend(vault))
    vault.fault("latency", prefix="/v1/sys/leases/renew", ms=1500)
    step = proj.script("i=0\nwhile [ $i -lt 200 ]; do echo \"line $i\"; i=$((i+1)); sleep 0.05; done\n")
    p = subprocess.Popen([str(proj.bin), "run", "--", str(step)], cwd=proj.dir, env=proj._env({"VAULT_TOKEN": vault.create_token()}),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    arrivals = []
    for _ in p.stdout:
        arrivals.append(time.monotonic())
    err = p.stderr.read()
    assert p.wait(timeout=30) == 0, err
    proj.outputs.append((b"", err))
    renewals = vault.requests(path="sys/leases/renew")
    assert renewals and renewals[0]["status"] == 200, "the slow renewal succeeded"
    assert len(arrivals) == 200
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    print(f"longest pause between output lines: {max(gaps) * 1000:.0f} ms")
    assert max(gaps) < 0.75, f"output paused {max(gaps):.2f} s during the renewal"
    assert_nothing_leaked(proj, vault)


def test_a_renewal_under_way_does_not_hold_up_the_exit(proj, vault):
    """A renewal may wait up to half the lease's remaining TTL for Vault (capped by the
    backend's timeout): for a 24 s lease renewed at about 16 s, 4 s. SIGTERM while it waits on
    a Vault that takes 20 s: secrets-run ends promptly, revoking the lease, instead of waiting
    out the renewal (a CI cancel allows seconds before SIGKILL)."""
    vault.add_db_role("slowexit", ttl=24, max_ttl=120)
    proj.standard_manifest(secrets_block='DB_PASS: {from: "v:database/creds/slowexit#password", owner: t}',
                           backends=vault_backend(vault, timeout="30s"))
    vault.fault("latency", count=1, prefix="/v1/sys/leases/renew", ms=20000)
    step = proj.script("sleep 30\n")
    running = proj.spawn("run", "--", step, env={"VAULT_TOKEN": vault.create_token()})
    deadline = time.monotonic() + 25
    while not vault.requests(path="sys/leases/renew") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)      # the renewal is now waiting on the slow answer
    signalled = time.monotonic()
    running.signal(15)
    r = running.wait(timeout=30)
    took = time.monotonic() - signalled
    print(f"exit {took * 1000:.0f} ms after SIGTERM with a renewal under way")
    assert r.status == 143, r
    assert took < 2.5, f"secrets-run took {took:.1f} s to exit after SIGTERM"
    assert vault.requests(path="sys/leases/revoke"), "the lease is still revoked"
    assert_nothing_leaked(proj, vault)
