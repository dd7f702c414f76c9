"""The step's sandbox (DESIGN §7), from inside the step: the seccomp deny list with its errnos
(syscall_probe.c calls each denied syscall), ordinary build work, pid/mount/ipc/net isolation,
no terminal, only the expected fds, a private tmpfs $SECRETS_DIR, capabilities and
no_new_privs, signal forwarding and teardown (nothing of the step outlives secrets-run, no
secret bytes stay on a file system).

Each behaviour is checked as root (what CI runs as) and as an unprivileged user (nobody, uid
65534, via setpriv; the sandbox then adds a user namespace)."""

import errno
import fcntl
import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import termios
from pathlib import Path

import pytest

from conftest import Project
from util import fs_type, processes_with_arg, wait_for

HERE = Path(__file__).resolve().parent
NOBODY = 65534
EPERM, ENOSYS, ENOTTY = errno.EPERM, errno.ENOSYS, errno.ENOTTY

GEN = "TOKEN: {generate: {length: 32}}"
GEN_AND_FD = """
TOKEN: {generate: {length: 32}}
FDTOK: {generate: {length: 32}, deliver: fd}
"""

# Docker's default capability set less net_raw (chown dac_override fowner fsetid kill setgid
# setuid setpcap net_bind_service sys_chroot mknod audit_write setfcap) as a /proc/PID/status
# mask: a root step in the host's network namespace must not read its loopback traffic.
DOCKER_DEFAULT_CAPS = "00000000a80405fb"
NO_CAPS = "0000000000000000"

# What syscall_probe prints inside the default sandbox: the deny list of DESIGN §7.6.
DEBUG_CALLS = {"ptrace": EPERM, "process_vm_readv": EPERM, "process_vm_writev": EPERM,
               "pidfd_getfd": EPERM}
DENIED = {
    **DEBUG_CALLS,
    **{name: EPERM for name in (
        "bpf perf_event_open userfaultfd keyctl add_key request_key "
        "unshare setns mount umount2 pivot_root chroot "
        "kexec_load kexec_file_load init_module finit_module delete_module reboot swapon swapoff "
        "settimeofday clock_settime clock_adjtime adjtimex "
        "iopl ioperm open_by_handle_at name_to_handle_at lookup_dcookie acct quotactl "
        "nfsservctl vhangup "
        "clone_newuser clone_newns clone_newpid clone_newnet clone_newipc clone_newuts "
        "clone_newcgroup ioctl_tiocsti ioctl_tioclinux").split()},
    **{name: ENOSYS for name in (
        "clone3 io_uring_setup io_uring_enter io_uring_register "
        "open_tree move_mount fsopen fsconfig fsmount fspick mount_setattr "
        "syscall_451 syscall_460 syscall_1000 syscall_1023").split()},
    # not on the list: a plain fork, an ordinary ioctl; past the range the kernel answers
    "clone": 0, "ioctl_fionread": ENOTTY, "syscall_1024": ENOSYS,
}
# Only some architectures have these (the probe leaves out what its headers lack).
ARCH_OPTIONAL = {"stime", "iopl", "ioperm", "lookup_dcookie", "nfsservctl", "kexec_file_load",
                 "pidfd_getfd"}


# ---- fixtures ----

def built_tool(name):
    """integration/NAME.c, built outside any sandbox into a directory every user can read;
    yields its path (a generator for session fixtures)."""
    cc = shutil.which("cc")
    if not cc:
        pytest.skip(f"no C compiler (cc) to build {name}")
    d = Path(tempfile.mkdtemp(prefix=f"sr-it-{name}-", dir="/tmp"))
    d.chmod(0o755)
    exe = d / name
    r = subprocess.run([cc, "-O1", "-o", str(exe), str(HERE / f"{name}.c")], capture_output=True, text=True)
    assert r.returncode == 0, f"building {name} failed:\n{r.stderr}"
    exe.chmod(0o755)
    yield exe
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def probe():
    """syscall_probe: calls each syscall the sandbox denies."""
    yield from built_tool("syscall_probe")


class Box:
    """A Project run as root or as nobody. For nobody, the binary is a 0755 copy and the
    project lives in a world-readable directory owned by nobody; the lists the proj fixture's
    guards check (values, outputs, secrets dirs, tags) are shared with the test's proj."""

    def __init__(self, who, proj, probe, world=None):
        self.who, self.probe = who, probe
        self.prefix = None
        self.uid = os.geteuid()
        if who == "nobody":
            binary = world / "secrets-run"
            shutil.copy2(proj.bin, binary)
            binary.chmod(0o755)
            inner = Project(world, binary, None)
            inner.values, inner.outputs = proj.values, proj.outputs
            inner.secrets_dirs, inner.tags = proj.secrets_dirs, proj.tags
            proj.tags.append(str(inner.data))
            inner.env["HOME"] = str(world)
            self.proj, self.world = inner, world
            self.prefix = [shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}",
                           "--clear-groups", "--"]
            self.uid = NOBODY
        else:
            self.proj, self.world = proj, None

    @property
    def root(self):
        return self.who == "root"

    @property
    def data(self):
        return self.proj.data

    @property
    def dir(self):
        return self.proj.dir

    def _own(self):
        if self.world:
            for p in [self.world, *self.world.rglob("*")]:
                os.chown(p, NOBODY, NOBODY, follow_symlinks=False)

    def run(self, *args, **kw):
        self._own()
        return self.proj.run(*args, prefix=self.prefix, **kw)

    def spawn(self, *args, **kw):
        self._own()
        return self.proj.spawn(*args, prefix=self.prefix, **kw)

    def popen(self, *args, **kw):
        """A raw Popen of secrets-run ARGS (for a terminal on stdin); outputs are the
        caller's to hand to .proj.outputs."""
        self._own()
        return subprocess.Popen(self.proj._argv(args, self.prefix), cwd=str(self.dir),
                                env=self.proj._env(None), **kw)

    def script(self, body, **kw):
        return self.proj.script(body, **kw)

    def report(self):
        return self.proj.report()

    def secret(self):
        return self.proj.secret()


@pytest.fixture(params=["root", "nobody"])
def box(request, proj, probe):
    if os.geteuid() != 0:
        pytest.skip("runs as root and switches to uid 65534: needs root")
    if request.param == "root":
        yield Box("root", proj, probe)
        return
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not installed")
    world = Path(tempfile.mkdtemp(prefix="sr-it-sbx-", dir="/tmp"))
    world.chmod(0o755)
    try:
        yield Box("nobody", proj, probe, world)
    finally:
        shutil.rmtree(world, ignore_errors=True)


# ---- helpers ----

def parse_probe(text):
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        assert name not in out, f"probe printed {name} twice"
        out[name] = int(value)
    return out


def status_fields(text):
    """/proc/PID/status text as a dict."""
    return {k: v.strip() for k, _, v in (l.partition(":") for l in text.splitlines())}


def mismatches(got, expected):
    return {name: (got.get(name), want) for name, want in expected.items()
            if got.get(name) != want and not (name in ARCH_OPTIONAL and name not in got)}


def check_probe(got, expected):
    missing = set(expected) - set(got) - ARCH_OPTIONAL
    assert not missing, f"the probe did not report {sorted(missing)}"
    assert not set(got) - set(expected), f"unexpected probe lines: {sorted(set(got) - set(expected))}"
    bad = mismatches(got, expected)
    assert not bad, "syscall: (observed errno, expected errno): " + ", ".join(
        f"{n}: ({errno.errorcode.get(o, o)}, {errno.errorcode.get(w, w) if w else 0})"
        for n, (o, w) in sorted(bad.items()))


def pid_ns_members(ns):
    """Host pids of live (not zombie) processes in the pid namespace ns ("pid:[...]")."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def host_pid(ns, inner_pid):
    """The host pid of the process that is inner_pid in the pid namespace ns, or None."""
    for pid in pid_ns_members(ns):
        try:
            with open(f"/proc/{pid}/status") as f:
                nspid = status_fields(f.read()).get("NSpid", "").split()
        except OSError:
            continue
        if nspid and nspid[-1] == str(inner_pid):
            return pid
    return None


def run_raw(box, args, timeout=60, **popen_kw):
    """secrets-run ARGS with Popen arguments of the caller's (a terminal, extra fds);
    returns (status, stdout, stderr), the outputs recorded for the leak guard."""
    p = box.popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen_kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    box.proj.outputs.append((out, err))
    return p.returncode, out.decode(errors="surrogateescape"), err.decode(errors="surrogateescape")


def started(p, ready, timeout=20):
    if not wait_for(ready.exists, timeout=timeout):
        p.signal(signal.SIGKILL)
        pytest.fail(f"the step did not start: {p.wait()!r}")


def files_containing(value, roots, exclude=()):
    """Files under roots whose bytes contain value (grep -r; names only, never the value)."""
    roots = [str(r) for r in roots if r and os.path.isdir(r)]
    if not roots:
        return []
    r = subprocess.run(["grep", "-rlF", "-s", "-D", "skip", "--", value, *roots],
                       capture_output=True, text=True)
    assert r.returncode in (0, 1, 2), r.stderr[-500:]
    return [f for f in r.stdout.splitlines() if not any(f.startswith(str(e)) for e in exclude)]


# ---- seccomp ----

def test_denied_syscalls_fail_with_their_errno(box):
    box.proj.standard_manifest(GEN)
    r = box.run("run", "--", box.probe)
    assert r.status == 0, r
    check_probe(parse_probe(r.stdout), DENIED)


def test_filter_and_no_new_privs_are_on_the_step(box):
    box.proj.standard_manifest(GEN)
    r = box.run("run", "--", "cat", "/proc/self/status")
    assert r.status == 0, r
    st = status_fields(r.stdout)
    assert st["Seccomp"] == "2", "the step runs without a seccomp filter"
    assert st["NoNewPrivs"] == "1"


def test_sandbox_off_has_no_filter(box):
    """--sandbox off: no filter; the probe sees what it sees outside secrets-run."""
    box.proj.standard_manifest(GEN)
    r = box.run("run", "--sandbox", "off", "--", "sh", "-c",
                'grep "^Seccomp:" /proc/self/status; exec "$0"', box.probe)
    assert r.status == 0, r
    seccomp_line, _, rest = r.stdout.partition("\n")
    assert seccomp_line.split() == ["Seccomp:", "0"]
    got = parse_probe(rest)
    assert got["unshare"] == 0, "unshare(0) does nothing and needs no privilege"
    assert got["keyctl"] == errno.EOPNOTSUPP, "an undefined keyctl command, not the filter's EPERM"
    direct = subprocess.run([*(box.prefix or []), str(box.probe)], capture_output=True, text=True,
                            start_new_session=True, stdin=subprocess.DEVNULL)
    assert direct.returncode == 0, direct.stderr
    assert got == parse_probe(direct.stdout), "--sandbox off changed what syscalls return"


def test_probe_arguments_tell_the_filter_apart(box):
    """The control for the probe: outside any filter (as root, every capability), each denied
    call the kernel implements answers something else than the filter's errno."""
    if not box.root:
        pytest.skip("the control needs every capability")
    direct = subprocess.run([str(box.probe)], capture_output=True, text=True,
                            start_new_session=True, stdin=subprocess.DEVNULL)
    assert direct.returncode == 0, direct.stderr
    got = parse_probe(direct.stdout)
    same = [n for n, want in DENIED.items()
            if n in got and n not in ("clone", "ioctl_fionread", "syscall_1024")
            and got[n] == want and want == EPERM]
    assert not same, f"outside the sandbox these already fail with EPERM: {same}"


def test_allow_ptrace_lifts_only_the_debugging_calls(box):
    box.proj.standard_manifest(GEN)
    r = box.run("run", "--allow-ptrace", "--", box.probe)
    assert r.status == 0, r
    expected = dict(DENIED)
    # what the kernel answers: pid 1 is not our tracee; zero iovecs; pidfd -1
    expected.update(ptrace=errno.ESRCH, process_vm_readv=0, process_vm_writev=0,
                    pidfd_getfd=errno.EBADF)
    check_probe(parse_probe(r.stdout), expected)

    r = box.run("run", "--allow-ptrace", "--", box.probe, "ptrace")
    assert r.status == 0, r
    assert parse_probe(r.stdout) == {"ptrace_child": 0, "process_vm_readv_child": 0}, \
        "with --allow-ptrace the probe must be able to debug its own child"

    r = box.run("run", "--", box.probe, "ptrace")
    assert r.status == 0, r
    assert parse_probe(r.stdout) == {"ptrace_child": EPERM, "process_vm_readv_child": EPERM}


# ---- ordinary build work ----

def test_build_work_succeeds_inside(box):
    box.proj.standard_manifest(GEN)
    src = box.dir / "hello.c"
    src.write_text('#include <stdio.h>\nint main(void) { puts("hello from cc"); return 0; }\n')
    step = box.script("""
        set -u
        cc -O1 -o ./hello ./hello.c 2> "$DATA/cc.err" && report cc ok
        report hello "$(./hello)"
        report py "$(/usr/bin/python3 -c 'import os, sys; print(sys.version_info[0], os.getpid() > 1)')"
        t=$(mktemp -d /tmp/sr-sbx-build.XXXXXX) && report tmp ok
        printf data > "$t/file" && report tmp_write "$(cat "$t/file")"
        (cd "$t" && git init -q repo && cd repo && git status --porcelain > /dev/null \
            && printf x > f && git status --porcelain) > "$DATA/git.out" 2> "$DATA/git.err" \
            && report git ok
        report git_status "$(cat "$DATA/git.out")"
        rm -rf "$t"
        """)
    r = box.run("run", "--", step)
    assert r.status == 0, r
    rep = box.report()
    assert rep.get("cc") == "ok", (box.data / "cc.err").read_text()
    assert rep["hello"] == "hello from cc"
    assert (box.dir / "hello").exists(), "the compiler's output is not in the workspace"
    assert rep["py"] == "3 True"
    assert rep.get("tmp") == "ok" and rep["tmp_write"] == "data"
    assert rep.get("git") == "ok", (box.data / "git.err").read_text()
    assert rep["git_status"] == "?? f"


# ---- isolation ----

def test_process_isolation(box):
    box.proj.standard_manifest(GEN)
    step = box.script("""
        report pid "$$"
        report ppid "$PPID"
        report procs "$(cd /proc && echo [0-9]*)"
        report comm1 "$(cat /proc/1/comm)"
        report pidns "$(readlink /proc/self/ns/pid)"
        report environ1 "$(cat /proc/1/environ > /dev/null 2>&1 && echo readable || echo refused)"
        report mem1 "$(/usr/bin/python3 -c 'open("/proc/1/mem", "rb").read(1)' > /dev/null 2>&1 && echo readable || echo refused)"
        report unshare "$(unshare -U true > /dev/null 2>&1 && echo ok || echo refused)"
        if command -v keyctl > /dev/null; then
            report keyctl "$(keyctl show > /dev/null 2>&1 && echo ok || echo refused)"
        fi
        """)
    r = box.run("run", "--", step)
    assert r.status == 0, r
    rep = box.report()
    assert rep["pid"] == "2", "the step is pid 2 in its own pid namespace"
    assert rep["ppid"] == "1"
    procs = sorted(map(int, rep["procs"].split()))
    # pid 1, the step, the $(...) subshell that listed them
    assert procs[:2] == [1, 2] and len(procs) <= 3 and max(procs) < 10, procs
    assert rep["comm1"] == "secrets-run-ini", "pid 1 should be the sandbox's reaper"
    assert rep["pidns"] != os.readlink("/proc/self/ns/pid")
    assert rep["environ1"] == "refused", "the step can read pid 1's environment"
    assert rep["mem1"] == "refused", "the step can read pid 1's memory"
    assert rep["unshare"] == "refused", "`unshare -U true` worked in the step"
    if "keyctl" in rep:
        assert rep["keyctl"] == "refused", "`keyctl show` worked in the step"


def test_step_has_no_terminal(box):
    """secrets-run on a terminal (stdin and controlling tty): the step has none; its stdin
    is /dev/null."""
    box.proj.standard_manifest(GEN)
    step = box.script("""
        report tty "$(tty)"
        report devtty "$( (: < /dev/tty) 2> /dev/null && echo opened || echo refused)"
        report stdin "$(readlink /proc/self/fd/0)"
        """)
    master, slave = pty.openpty()

    def ctty():   # the pty becomes secrets-run's controlling terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    try:
        status, out, err = run_raw(box, ["run", "--", step], stdin=slave,
                                   start_new_session=True, preexec_fn=ctty)
    finally:
        os.close(slave)
        os.close(master)
    assert status == 0, err[-2000:]
    rep = box.report()
    assert rep["tty"] == "not a tty"
    assert rep["devtty"] == "refused", "the step could open /dev/tty"
    assert rep["stdin"] == "/dev/null"


def test_piped_input_passes_through(box):
    box.proj.standard_manifest(GEN)
    step = box.script("""
        read line
        report got "$line"
        report stdin "$(readlink /proc/self/fd/0 | cut -d: -f1)"
        """)
    r = box.run("run", "--", step, input="piped data\n")
    assert r.status == 0, r
    assert box.report() == {"got": "piped data", "stdin": "pipe"}


def _fds(listing):
    """ls -l /proc/self/fd output → {fd: target}, without ls's own directory fd."""
    fds = {}
    for line in listing.splitlines():
        m = re.search(r" (\d+) -> (.*)$", line)
        if m:
            fds[int(m.group(1))] = m.group(2)
    own = [fd for fd, t in fds.items() if re.fullmatch(r"/proc/\d+/fd", t)]
    assert len(own) == 1, f"cannot tell ls's own fd: {fds}"
    del fds[own[0]]
    return fds


def test_only_std_and_delivery_fds_are_open(box):
    box.proj.standard_manifest(GEN_AND_FD)
    # secrets-run itself inherits a stray fd, which must not reach the step
    stray = os.open("/dev/null", os.O_RDONLY)
    try:
        status, out, err = run_raw(box, ["run", "--", "sh", "-c",
                                         'echo "FD=$FDTOK_FD"; exec ls -l /proc/self/fd'],
                                   stdin=subprocess.DEVNULL, pass_fds=(stray,))
    finally:
        os.close(stray)
    assert status == 0, err
    assert out.splitlines()[0] == "FD=3"
    fds = _fds(out)
    assert sorted(fds) == [0, 1, 2, 3], fds
    assert fds[3].startswith("/memfd:"), fds[3]

    box.proj.standard_manifest(GEN)
    r = box.run("run", "--", "ls", "-l", "/proc/self/fd")
    assert r.status == 0, r
    assert sorted(_fds(r.stdout)) == [0, 1, 2]


def test_secrets_dir_is_a_private_tmpfs(box):
    box.proj.standard_manifest(GEN)
    ready = box.data / "ready"
    step = box.script(f"""
        report SECRETS_DIR "$SECRETS_DIR"
        report fs "$(stat -f -c %T "$SECRETS_DIR")"
        report mount "$(awk -v d="$SECRETS_DIR" '$5 == d {{ i = 7; while ($i != "-") i++; print $(i + 1) }}' /proc/self/mountinfo)"
        report inside "$(ls -A "$SECRETS_DIR" | tr '\\n' ' ')"
        touch "$SECRETS_DIR/written-by-step" && report wrote yes
        report procs "$(cd /proc && echo [0-9]*)"
        touch "{ready}"
        while [ ! -e "$DATA/go" ]; do sleep 0.05; done
        """)
    p = box.spawn("run", "--", step)
    started(p, ready)
    try:
        rep = box.report()
        host = rep["SECRETS_DIR"]
        assert os.path.isdir(host), "the host's secrets directory does not exist while the step runs"
        host_entries = sorted(os.listdir(host))
        procs = rep["procs"].split()
    finally:
        (box.data / "go").touch()
        r = p.wait(timeout=30)
    assert r.status == 0, r
    assert rep["fs"] == "tmpfs"
    assert rep["mount"] == "tmpfs", "no tmpfs mounted on $SECRETS_DIR inside the sandbox"
    assert rep["inside"].split() == ["TOKEN"]
    assert rep["wrote"] == "yes"
    assert host_entries == [], f"the host's copy of $SECRETS_DIR is not empty: {host_entries}"
    assert str(p.pid) not in procs, "the supervisor's pid is visible in the step's /proc"
    assert not os.path.lexists(host)


# ---- capabilities ----

@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_capabilities(box, mode):
    box.proj.standard_manifest(GEN)
    r = box.run("run", "--sandbox", mode, "--", "cat", "/proc/self/status")
    assert r.status == 0, r
    st = status_fields(r.stdout)
    want = DOCKER_DEFAULT_CAPS if box.root and mode == "auto" else NO_CAPS
    got = {k: st[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    assert got == {"CapInh": NO_CAPS, "CapPrm": want, "CapEff": want, "CapBnd": want,
                   "CapAmb": NO_CAPS}
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    assert st["Uid"].split()[0] == str(box.uid)


# ---- network ----

@pytest.fixture
def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def test_network_default_reaches_host_loopback_off_does_not(box, listener):
    box.proj.standard_manifest(GEN)
    connect = ["/usr/bin/python3", "-c",
               f'import socket; socket.create_connection(("127.0.0.1", {listener}), 2)']
    r = box.run("run", "--", *connect)
    assert r.status == 0, r
    r = box.run("run", "--network", "off", "--", *connect)
    assert r.status == 1, r
    assert "ConnectionRefusedError" in r.stderr or "timed out" in r.stderr, r.stderr
    # the loopback interface inside is up: a listener of the step's own is reachable
    r = box.run("run", "--network", "off", "--", "/usr/bin/python3", "-c",
                "import socket; s = socket.create_server(('127.0.0.1', 0)); "
                "socket.create_connection(s.getsockname(), 2); print('lo up')")
    assert r.status == 0 and r.stdout.strip() == "lo up", r


def test_layers_are_reported(box):
    box.proj.standard_manifest(GEN)
    user = "" if box.root else "user,"
    for net in (False, True):
        args = ["--network", "off"] if net else []
        layers = f"{user}mount,pid,ipc,uts,{'net,' if net else ''}proc,secrets-tmpfs,hidden-paths,caps,seccomp"
        r = box.run("run", "--dry-run", *args)
        assert r.status == 0, r
        assert f"sandbox: active: {layers}; missing: none" in r.stdout.splitlines(), r
        r = box.run("run", "-v", *args, "--", "true")
        assert r.status == 0, r
        # the output guard comes with the step (its listener is the step's own filter)
        assert f"secrets-run: sandbox: active: {layers},output-guard; missing: none" in r.stderr.splitlines(), r


# ---- signals and teardown ----

@pytest.mark.parametrize("trap,status", [(True, 7), (False, 143)])
def test_term_to_secrets_run_reaches_the_step(box, trap, status):
    box.proj.standard_manifest(GEN)
    ready, marker = box.data / "ready", box.data / "got-term"
    trap_line = f"trap 'echo TERM > \"{marker}\"; exit 7' TERM" if trap else ""
    step = box.script(f"""
        {trap_line}
        touch "{ready}"
        while :; do sleep 0.1; done
        """)
    p = box.spawn("run", "--", step)
    started(p, ready)
    p.signal(signal.SIGTERM)
    r = p.wait(timeout=30)
    assert r.status == status, r
    if trap:
        assert marker.read_text().strip() == "TERM"


def test_kill_9_leaves_no_process_and_no_secret(box):
    value = box.secret()
    provider = box.proj.provider({"app/key": value})
    box.proj.standard_manifest(
        'APP_KEY: {from: "p:app/key", owner: team-a}\n'
        'FD_KEY: {from: "p:app/key", owner: team-a, deliver: fd}',
        backends=f"p: {{type: exec, command: ['{provider}']}}")
    ready = box.data / "ready"
    step = box.script(f"""
        report SECRETS_DIR "$SECRETS_DIR"
        report pidns "$(readlink /proc/self/ns/pid)"
        report step "$$"
        sleep 300 &
        report sleep "$!"
        cat "$APP_KEY_FILE" > /dev/null
        touch "{ready}"
        wait
        """)
    p = box.spawn("run", "--", step)
    started(p, ready)
    rep = box.report()
    ns = rep["pidns"]
    hosts = {name: host_pid(ns, rep[name]) for name in ("step", "sleep")}
    assert all(hosts.values()), f"cannot find the step's processes on the host: {hosts}"
    p.signal(signal.SIGKILL)
    r = p.wait(timeout=30)
    assert r.status == -signal.SIGKILL
    assert wait_for(lambda: not pid_ns_members(ns), timeout=10), \
        f"processes of the step outlived kill -9 of secrets-run: {pid_ns_members(ns)}"
    alive = [pid for pid in hosts.values() if pid in pid_ns_members(ns)]
    assert not alive
    # the test's own copies of the value are not what this looks for
    shutil.rmtree(box.data / "provider-values")
    roots = ["/dev/shm", "/tmp", box.dir, box.proj.runtime, os.environ.get("XDG_RUNTIME_DIR")]
    found = files_containing(value, roots)
    assert not found, f"the secret value is still on a file system after kill -9: {found}"
    # the crashed run's directory is swept by the next start, not left for ever
    leftover = rep["SECRETS_DIR"]
    box.proj.standard_manifest(GEN)
    r = box.run("run", "--", "true")
    assert r.status == 0, r
    assert not os.path.lexists(leftover)


def test_daemon_of_the_step_dies_with_it(box):
    box.proj.standard_manifest(GEN)
    tag = f"sr-daemon-{os.urandom(6).hex()}"
    box.proj.tags.append(tag)
    step = box.script(f"""
        report pidns "$(readlink /proc/self/ns/pid)"
        setsid nohup sh -c 'touch "$0.up"; sleep 300; :' "$DATA/{tag}" > /dev/null 2>&1 < /dev/null &
        while [ ! -e "$DATA/{tag}.up" ]; do sleep 0.05; done
        exit 5
        """)
    r = box.run("run", "--", step)
    left_in_ns = pid_ns_members(box.report()["pidns"])
    left_tagged = processes_with_arg(tag)
    assert r.status == 5, r
    assert not left_in_ns, f"processes of the step outlived secrets-run: {left_in_ns}"
    assert not left_tagged, "the step's daemon outlived secrets-run"


# ---- what the step's uid could read but must not ----

def test_key_directory_and_stores_are_covered(proj):
    """The step runs as our uid: without the mount namespace it could read the store's key
    and decrypt secrets it was never granted. Inside, the key directory is an empty
    read-only tmpfs and every `type: file` store is /dev/null."""
    keydir = Path(proj.env["XDG_CONFIG_HOME"]) / "secrets-run"
    keydir.mkdir(parents=True)
    key = proj.secret()
    (keydir / "store.key").write_text(key)
    store = proj.dir / "vault-store"
    store.write_text(proj.secret())
    proj.standard_manifest(GEN, backends="local: {type: file, path: vault-store}")
    step = proj.script(f"""
        if cat '{keydir}/store.key' >/dev/null 2>&1; then report KEY readable; else report KEY hidden; fi
        report STORE_BYTES "$(wc -c < '{store}')"
        """)
    r = proj.run("run", "--", step)
    assert r.status == 0, r
    assert proj.report() == {"KEY": "hidden", "STORE_BYTES": "0"}
    # and on the host, after the run, both are as they were
    assert (keydir / "store.key").read_text() == key
    assert store.stat().st_size > 0
    (proj.data / "report").unlink()
    r = proj.run("run", "--sandbox", "off", "--", step)
    assert r.status == 0, r
    assert proj.report()["KEY"] == "readable"


def init_of(supervisor):
    """The host pid of the sandbox's pid 1: the child of secrets-run (pid supervisor) named
    secrets-run-init (the kernel keeps 15 bytes of it); None if there is none."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1:stat.rindex(b")")]
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        if comm == b"secrets-run-init"[:15] and ppid == supervisor:
            return int(entry)
    return None


def test_pid1_environment_holds_no_caller_value(box, vault_factory):
    """pid 1 is cloned before the fetch, from a supervisor whose environment still holds the
    env backend's variables and the backends' credentials. For the whole run its
    /proc/PID/environ (read as root from the host) must show none of them."""
    vault = vault_factory(tls=False)   # plain http on loopback: nobody can reach it too
    env_value, kv_value, stored = box.secret(), box.secret(), box.secret()
    vault.kv2_put("app", {"k": kv_value})
    token = box.proj.register(vault.create_token())
    store_path = box.dir / ".secrets-run" / "store"
    r = box.run("store", "init", "--store", store_path)
    assert r.status == 0, r
    key_file = Path(box.proj.env["XDG_CONFIG_HOME"]) / "secrets-run" / "store.key"
    key = box.proj.register(key_file.read_text().strip())
    r = box.run("store", "set", "S", "--store", store_path, input=stored,
                env={"SECRETS_RUN_STORE_KEY": key})
    assert r.status == 0, r
    box.proj.standard_manifest(
        backends=f"""
            ci: {{type: env}}
            v: {{type: vault, address: "{vault.addr}", timeout: 5s, auth: {{method: token}}}}
            local: {{type: file, path: .secrets-run/store}}
            """,
        secrets_block="""
            E: {from: "ci:SR_IT_ENV_SECRET", owner: t}
            V: {from: "v:secret/data/app#k", owner: t}
            S: {from: "local:S", owner: t}
            """)
    ready, go = box.data / "ready", box.data / "go"
    expected = {n: box.proj.expect(v) for n, v in (("E", env_value), ("V", kv_value), ("S", stored))}
    step = box.script("".join(f"report same_{n} \"$(same \"${n}_FILE\" '{p}')\"\n" for n, p in expected.items())
                      + f"""
        touch '{ready}'
        i=0
        while [ ! -e '{go}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
        """)
    p = box.spawn("run", "--", step, env={"SR_IT_ENV_SECRET": env_value, "VAULT_TOKEN": token,
                                          "SECRETS_RUN_STORE_KEY": key})
    try:
        started(p, ready)
        pid1 = init_of(p.pid)
        assert pid1, "cannot find the sandbox's pid 1 (a child secrets-run-init of secrets-run)"
        with open(f"/proc/{pid1}/environ", "rb") as f:
            environ = f.read()
    finally:
        go.touch()
    r = p.wait()
    assert r.status == 0, r
    assert box.report() == {"same_E": "yes", "same_V": "yes", "same_S": "yes"}
    held = [what for what, v in (("the env backend's value", env_value), ("VAULT_TOKEN", token),
                                 ("SECRETS_RUN_STORE_KEY", key))
            if v.encode() in environ]
    assert not held, f"pid 1's /proc/PID/environ holds {', '.join(held)}"


def plain_memory(pid):
    """The bytes of a process's brk heap and main stack (read as root through /proc/PID/mem):
    where an ordinary malloc'd copy of a value, or the environment block, would be."""
    out = b""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or fields[5] not in ("[heap]", "[stack]"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            mem.seek(start)
            out += mem.read(end - start)
    return out


def test_supervisor_keeps_values_only_in_secure_memory(box):
    """While the step runs, no fetched value is in the supervisor's ordinary heap or on its
    stack: the environment the env backend read from is scrubbed, the exec provider's output
    goes straight to a secure buffer and its stderr copies are wiped."""
    env_value, exec_value = box.secret(), box.secret()
    provider = box.proj.provider({"x": exec_value})
    box.proj.standard_manifest(
        backends=f"""
            ci: {{type: env}}
            p: {{type: exec, command: ["{provider}"]}}
            """,
        secrets_block="""
            E: {from: "ci:SR_IT_ENV_SECRET", owner: t}
            X: {from: "p:x", owner: t}
            """)
    ready, go = box.data / "ready", box.data / "go"
    step = box.script(f"""
        touch '{ready}'
        i=0
        while [ ! -e '{go}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
        """)
    p = box.spawn("run", "--", step, env={"SR_IT_ENV_SECRET": env_value})
    try:
        started(p, ready)
        memory = plain_memory(p.pid)
    finally:
        go.touch()
    r = p.wait()
    assert r.status == 0, r
    held = [what for what, v in (("the env backend's value", env_value), ("the exec provider's value", exec_value))
            if v.encode() in memory]
    assert not held, f"the supervisor's heap or stack holds {', '.join(held)}"


@pytest.mark.parametrize("limit", ["65536:65536", "65536:8388608"])
def test_locked_memory_limit_raised_or_named(box, limit):
    """RLIMIT_MEMLOCK keeps values out of swap only as far as it goes: the soft limit is raised
    to the hard one, and a run whose secrets still do not fit says so once, naming the limit.
    Root (CAP_IPC_LOCK) is not limited."""
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) is not installed")
    box.proj.standard_manifest("T: {generate: {length: 32}, owner: t}")
    box.prefix = [shutil.which("prlimit"), f"--memlock={limit}", "--"] + (box.prefix or [])
    r = box.run("run", "--", "true")
    assert r.status == 0, r
    warnings = [x for x in r.stderr.splitlines() if "locked memory:" in x]
    if box.root or limit.endswith(":8388608"):
        assert warnings == [], r.stderr
    else:
        assert len(warnings) == 1 and "RLIMIT_MEMLOCK is 64 KiB" in warnings[0], r.stderr


CONTAINMENT_PROBE = r"""
import os, socket
def writable(p):
    try:
        os.close(os.open(p, os.O_WRONLY))
        return "yes"
    except OSError as e:
        return e.strerror
print("core_pattern", writable("/proc/sys/kernel/core_pattern"))
print("sys_file", writable(os.environ["SYS_FILE"]))
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()
    print("af_packet yes")
except OSError as e:
    print("af_packet", e.strerror.replace(" ", "_"))
print("keys", len(open("/proc/keys", "rb").read()))
"""


def host_writable_sys_file():
    """A file under /sys that root may open for writing on this host, or None."""
    for path in ("/sys/class/net/lo/tx_queue_len", "/sys/kernel/mm/transparent_hugepage/enabled",
                 "/sys/kernel/mm/ksm/run"):
        try:
            os.close(os.open(path, os.O_WRONLY))
            return path
        except OSError:
            continue
    return None


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_root_step_cannot_write_kernel_knobs_or_sniff(proj, mode):
    """A root step owns /proc/sys/kernel/core_pattern (a pipe helper there runs on the host,
    outside every namespace, when a process crashes) and could open raw sockets on the host's
    loopback: inside the sandbox /proc/sys and /sys are read-only, /proc/keys is masked and
    CAP_NET_RAW is gone, in auto as in strict."""
    if os.geteuid() != 0:
        pytest.skip("the containment of a root step: needs root")
    sys_file = host_writable_sys_file()
    try:
        os.close(os.open("/proc/sys/kernel/core_pattern", os.O_WRONLY))
    except OSError:
        pytest.skip("core_pattern is not writable on this host (a container?): nothing to contain")
    if not sys_file:
        pytest.skip("no file under /sys is writable on this host")
    proj.standard_manifest("T: {generate: {length: 32}, owner: t}")
    probe = proj.data / "probe.py"
    probe.write_text(CONTAINMENT_PROBE)
    r = proj.run("run", "--sandbox", mode, "--", "/usr/bin/python3", str(probe), env={"SYS_FILE": sys_file})
    assert r.status == 0, r
    seen = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert seen["core_pattern"] == "Read-only file system", seen
    assert seen["sys_file"] == "Read-only file system", seen
    assert seen["af_packet"] == "Operation_not_permitted", seen
    assert seen["keys"] == "0", seen


def test_relative_key_file_hidden_from_a_subdirectory_and_through_renames(proj):
    """A key_file the manifest names relatively is hidden where the store finds it (relative
    to the manifest's directory), also when the run starts in a subdirectory; the store's and
    the key's directories are covered whole, so the host replacing either file by rename
    during the run (every `store set` does) does not make it readable."""
    keys = proj.dir / "keys"
    proj.standard_manifest(GEN, backends="local: {type: file, path: .secrets-run/store, key_file: keys/store.key}")
    r = proj.run("store", "init")
    assert r.status == 0, r
    key_text = proj.register((keys / "store.key").read_text().strip())
    r = proj.run("store", "set", "S", input=proj.secret())
    assert r.status == 0, r
    sub = proj.dir / "sub"
    sub.mkdir()
    ready, go = proj.data / "ready", proj.data / "go"
    key_path, store_path = keys / "store.key", proj.dir / ".secrets-run" / "store"
    step = proj.script(f"""
        look() {{
                if cat '{key_path}' >/dev/null 2>&1; then report KEY_$1 readable; else report KEY_$1 hidden; fi
                if cat '{store_path}' >/dev/null 2>&1; then report STORE_$1 readable; else report STORE_$1 hidden; fi
        }}
        look before
        touch '{ready}'
        i=0
        while [ ! -e '{go}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
        look after
        """)
    p = proj.spawn("run", "--", step, cwd=sub)
    try:
        started(p, ready)
        # the host rewrites both by rename while the step runs
        r = proj.run("store", "set", "S", input=proj.secret())
        assert r.status == 0, r
        tmp = keys / "store.key.new"
        tmp.write_text(key_text + "\n")
        tmp.chmod(0o600)
        os.rename(tmp, key_path)
    finally:
        go.touch()
    r = p.wait()
    assert r.status == 0, r
    assert proj.report() == {"KEY_before": "hidden", "STORE_before": "hidden",
                             "KEY_after": "hidden", "STORE_after": "hidden"}


# ---- hosts this machine is not (integration/hostemu.c) ----

@pytest.fixture(scope="session")
def hostemu():
    """hostemu: runs a command as on a host this machine is not."""
    yield from built_tool("hostemu")


# host -> (what the one sandbox line names, whether root is affected at all)
EMULATED_HOSTS = {
    "ubuntu-apparmor": ("making the mount namespace private: Permission denied; a security module refuses "
                        "mounts in new namespaces (on Ubuntu 23.10+ AppArmor's "
                        "kernel.apparmor_restrict_unprivileged_userns: install the secrets-run AppArmor profile)", True),
    "container": ("cannot create namespaces: not permitted", True),
    "userns-exhausted": ("cannot create namespaces: the limit of user namespaces is reached "
                         "(sysctl user.max_user_namespaces)", False),
}


@pytest.mark.parametrize("host", sorted(EMULATED_HOSTS))
def test_auto_degrades_on_emulated_hosts_and_strict_names_the_cause(box, hostemu, host):
    """Where a layer fails, whether at clone or after the namespaces exist (Ubuntu 24.04's
    AppArmor rule lets them be created, then refuses mounts), auto runs the step with its
    secret, printing one line that names the cause, and strict exits 125 naming it."""
    cause, hits_root = EMULATED_HOSTS[host]
    box.proj.standard_manifest("T: {generate: {length: 32}, owner: t}")
    box.prefix = (box.prefix or []) + [str(hostemu), host]
    step = box.script('report bytes "$(wc -c < "$T_FILE")"\n')
    r = box.run("run", "--sandbox", "auto", "--", step)
    assert r.status == 0, r
    assert box.report() == {"bytes": "32"}
    lines = [x for x in r.stderr.splitlines() if x.startswith("secrets-run: sandbox:")]
    affected = hits_root or not box.root
    if affected:
        assert len(lines) == 1 and "missing: " in lines[0] and cause in lines[0], r.stderr
    else:
        assert lines == [], r.stderr
    r = box.run("run", "--sandbox", "strict", "--", step)
    if affected:
        assert r.status == 125, r
        assert cause in r.stderr and "strict mode needs every layer" in r.stderr, r.stderr
    else:
        assert r.status == 0, r


def test_audit_log_that_cannot_be_created_at_its_default_location_names_the_options(box):
    """A read-only HOME (as a user), or none at all (as root here): 125 before anything is
    fetched, naming where else the log can go."""
    box.proj.standard_manifest("T: {generate: {length: 32}, owner: t}")
    if box.root:
        env = {"HOME": None, "XDG_STATE_HOME": None}
    else:
        home = box.world / "ro-home"
        home.mkdir()
        box._own()
        home.chmod(0o555)
        env = {"HOME": str(home), "XDG_STATE_HOME": None}
    step = box.script("report ran yes\n")
    r = box.run("run", "--", step, env=env)
    assert r.status == 125, r
    assert box.report() == {}, "nothing ran"
    assert ("pass --audit-log PATH" in r.stderr and "policy.audit_log" in r.stderr and
            "$SECRETS_RUN_AUDIT_LOG" in r.stderr), r.stderr


@pytest.mark.parametrize("host", [None] + sorted(EMULATED_HOSTS))
def test_doctor_reports_what_a_run_would_get(box, hostemu, host):
    """doctor builds the sandbox as a run would, with nothing fetched: each layer, the reason
    and the fix for those that fail, what auto and strict get; exit 0 when strict would work."""
    if host:
        box.prefix = (box.prefix or []) + [str(hostemu), host]
    affected = bool(host) and (EMULATED_HOSTS[host][1] or not box.root)
    r = box.run("doctor", "--format", "json")
    report = json.loads(r.stdout)
    layers = {x["layer"]: x for x in report["layers"]}
    assert set(layers) == {"user", "mount", "pid", "ipc", "uts", "net", "proc", "secrets-tmpfs",
                           "hidden-paths", "caps", "seccomp", "output-guard"}
    # observation needs only seccomp: every emulated host keeps it
    assert layers["output-guard"]["works"] == "yes", layers["output-guard"]
    assert layers["user"]["works"] == ("not needed" if box.root else "no" if affected else "yes")
    if not affected:
        assert r.status == 0 and report["strict"]["works"] and report["auto"]["mode"] == "full", report
        assert all(x["works"] in ("yes", "not needed") for x in report["layers"]), report
    else:
        cause, _ = EMULATED_HOSTS[host]
        assert r.status == 1 and not report["strict"]["works"] and report["auto"]["mode"] == "degraded", report
        assert cause in report["strict"]["why"], report
        assert layers["mount"]["works"] == "no" and cause in layers["mount"]["why"] and layers["mount"]["fix"]
        assert layers["caps"]["works"] == "yes" and layers["seccomp"]["works"] == "yes"
    text = box.run("doctor")
    assert text.status == r.status, text
    assert ("strict: works" in text.stdout) == (not affected), text.stdout


CHROOT_RUN = r"""#!/bin/sh
# chroot-run DIR CWD COMMAND...: COMMAND in CWD, chrooted into DIR, a plain directory (no
# mount point) that holds the host's top-level directories as bind mounts, in a mount
# namespace of its own so nothing of it outlives the command.
set -e
d=$1; cwd=$2; shift 2
mkdir -p "$d"
exec unshare -m sh -c '
set -e
d=$1; cwd=$2; shift 2
mount --make-rprivate /
for p in /*; do
        name=${p#/}
        if [ -L "$p" ]; then ln -sfn "$(readlink "$p")" "$d/$name"
        elif [ -d "$p" ]; then mkdir -p "$d/$name"; mount --rbind "$p" "$d/$name"
        fi
done
exec chroot "$d" sh -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
' sh "$d" "$cwd" "$@"
"""


def test_chroot_auto_degrades_and_strict_names_it(box):
    """In a chroot / is no mount point, so mounts cannot be made private: auto runs the step
    as a plain child with its secret, its one line naming the chroot; strict exits 125
    naming it; doctor says the same."""
    if not shutil.which("unshare") or not shutil.which("chroot"):
        pytest.skip("unshare and chroot (util-linux, coreutils) are needed")
    helper = box.data / "chroot-run"
    helper.write_text(CHROOT_RUN)
    helper.chmod(0o755)
    root = Path(tempfile.mkdtemp(prefix="sr-it-chroot-", dir="/tmp"))
    root.chmod(0o755)   # the chroot's / , which a user inside must traverse
    try:
        box.proj.standard_manifest("T: {generate: {length: 32}, owner: t}")
        # the chroot is made as root; the user (if any) is taken on inside it
        box.prefix = [str(helper), str(root), str(box.dir)] + (box.prefix or [])
        step = box.script('report bytes "$(wc -c < "$T_FILE")"\n')
        r = box.run("run", "--sandbox", "auto", "--", step)
        assert r.status == 0, r
        assert box.report() == {"bytes": "32"}
        lines = [x for x in r.stderr.splitlines() if x.startswith("secrets-run: sandbox:")]
        assert len(lines) == 1 and "this is a chroot" in lines[0], r.stderr
        r = box.run("run", "--sandbox", "strict", "--", step)
        assert r.status == 125 and "this is a chroot" in r.stderr, r
        r = box.run("doctor", "--format", "json")
        assert r.status == 1 and "this is a chroot" in json.loads(r.stdout)["strict"]["why"], r
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


NO_SHM_RUN = r"""#!/bin/sh
# no-shm-run DIR COMMAND...: COMMAND where /dev/shm is DIR, a directory on disk, and
# $XDG_RUNTIME_DIR is unset: a host with no memory file system for the secrets directory.
set -e
d=$1; shift
exec unshare -m sh -c 'set -e; d=$1; shift; mount --make-rprivate /; mount --bind "$d" /dev/shm
exec env -u XDG_RUNTIME_DIR "$@"' sh "$d" "$@"
"""


def test_no_memory_file_system_on_the_host(box, hostemu):
    """Without a tmpfs at /dev/shm or $XDG_RUNTIME_DIR the host directory is only the mount
    point of the run's private tmpfs: auto and strict deliver the secret there, in memory;
    where no mount namespace can be had either, the run refuses rather than write a secret to
    disk, saying why."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is needed")
    helper = box.data / "no-shm-run"
    helper.write_text(NO_SHM_RUN)
    helper.chmod(0o755)
    disk = Path(tempfile.mkdtemp(prefix="sr-it-noshm-", dir=str(HERE.parent)))
    disk.chmod(0o1777)
    if fs_type(disk) == "tmpfs":
        pytest.skip("the source tree is on a tmpfs: no disk directory to stand in for /dev/shm")
    try:
        box.proj.standard_manifest("T: {generate: {length: 32}, owner: t}")
        user = box.prefix or []
        box.prefix = [str(helper), str(disk)] + user
        step = box.script('report bytes "$(wc -c < "$T_FILE")"\nreport fs "$(stat -f -c %T "$SECRETS_DIR")"\n')
        for mode in ("auto", "strict"):
            r = box.run("run", "--sandbox", mode, "--", step)
            assert r.status == 0, r
            assert box.report() == {"bytes": "32", "fs": "tmpfs"}, mode
            (box.data / "report").unlink()
        assert box.run("doctor").status == 0
        r = box.run("run", "--sandbox", "off", "--", step)
        assert r.status == 125 and "no memory file system for the secrets" in r.stderr, r
        box.prefix = [str(helper), str(disk), str(hostemu), "container"] + user
        r = box.run("run", "--", step)
        assert r.status == 125 and "no memory file system for the secrets" in r.stderr, r
        assert not (box.data / "report").exists(), "nothing ran"
        r = box.run("doctor", "--format", "json")
        assert r.status == 1 and json.loads(r.stdout)["auto"]["mode"] == "refuses", r
    finally:
        shutil.rmtree(disk, ignore_errors=True)


@pytest.mark.parametrize("outer", ["auto", "strict"])
def test_nested_run_keeps_the_outer_steps_secrets(box, outer):
    """A secrets-run inside a step (a Makefile's sub-step): its start-up sweep of crashed
    runs' directories must not take the outer run's, whose path inside the outer sandbox is a
    private tmpfs; both steps read their secrets while the other runs."""
    box.proj.standard_manifest("OUTER: {generate: {length: 32}, owner: t}")
    inner_dir = box.dir / "inner"
    inner_dir.mkdir()
    box.proj.standard_manifest("INNER: {generate: {length: 24}, owner: t}", path=inner_dir / "secrets.yaml")
    binary = box.proj.bin
    step = box.script(f"""
        report outer_before "$(wc -c < "$OUTER_FILE")"
        cd '{inner_dir}'
        '{binary}' run -- sh -c 'wc -c < "$INNER_FILE"; wc -c < "$OUTER_FILE" 2>/dev/null || echo none' > '{box.data}/inner.out' 2>'{box.data}/inner.err'
        report inner_status "$?"
        report outer_after "$(wc -c < "$OUTER_FILE" 2>/dev/null || echo gone)"
        """)
    r = box.run("run", "--sandbox", outer, "--", step)
    assert r.status == 0, r
    rep = box.report()
    inner = (box.data / "inner.out").read_text().split()
    assert rep == {"outer_before": "32", "inner_status": "0", "outer_after": "32"}, \
        (rep, (box.data / "inner.err").read_text())
    assert inner[0] == "24", inner   # the inner step gets its own secret


def test_root_without_any_capability(proj):
    """Root with empty bounding, permitted, effective, inheritable and ambient sets (docker run
    --cap-drop=ALL, a restricted pod): auto runs the step with its secret, its line naming the
    missing capability; strict exits 125 naming it; nothing is an exec failure (126)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv (util-linux)")
    proj.standard_manifest("T: {generate: {length: 32}, owner: t}")
    step = proj.script('report bytes "$(wc -c < "$T_FILE")"\nreport caps "$(grep CapEff /proc/self/status | cut -f2)"\n')
    bare = [shutil.which("setpriv"), "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--"]
    r = proj.run("run", "--", step, prefix=bare)
    assert r.status == 0, r
    assert proj.report() == {"bytes": "32", "caps": "0000000000000000"}
    assert "root without CAP_SYS_ADMIN" in r.stderr, r.stderr
    (proj.data / "report").unlink()
    r = proj.run("run", "--sandbox", "strict", "--", step, prefix=bare)
    assert r.status == 125 and "root without CAP_SYS_ADMIN" in r.stderr, r


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_a_failing_layer_of_the_steps_own_narrowing_is_125_not_126(box, hostemu, mode):
    """The step's process narrows itself (capabilities, no_new_privs, seccomp) right before
    exec: a layer failing there is the sandbox's failure, 125 naming it, never the 126 that
    says the command could not be executed."""
    box.proj.standard_manifest("T: {generate: {length: 32}, owner: t}")
    box.prefix = (box.prefix or []) + [str(hostemu), "capset-refused"]
    step = box.script("report ran yes\n")
    r = box.run("run", "--sandbox", mode, "--", step)
    assert r.status == 125, r
    assert "sandbox: narrowing the step (capabilities, no_new_privs, seccomp): Operation not permitted" in r.stderr
    assert "cannot execute" not in r.stderr
    assert box.report() == {}, "the step did not run"
