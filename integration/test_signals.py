"""A terminal signals a whole process group: Ctrl-C must reach the step exactly once
(forwarded by the supervisor), whatever else sits in secrets-run's process group."""

import os
import signal
import subprocess
import time

from util import wait_for

GEN = "TOK: {generate: {length: 24}}"


def test_group_sigint_reaches_the_step_once(proj):
    proj.standard_manifest(GEN)
    ready = proj.data / "ready"
    step = proj.script(f"""
        n=0
        trap 'n=$((n+1))' INT
        touch '{ready}'
        i=0
        while [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done
        report INTS "$n"
        """)
    for sandbox in ("auto", "off"):
        ready.unlink(missing_ok=True)
        (proj.data / "report").unlink(missing_ok=True)
        p = subprocess.Popen([str(proj.bin), "--sandbox", sandbox, "--", str(step)], cwd=proj.dir,
                             env=proj.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        assert wait_for(ready.exists, timeout=10)
        time.sleep(0.1)
        os.killpg(p.pid, signal.SIGINT)        # what a terminal's Ctrl-C does
        out, err = p.communicate(timeout=30)
        proj.outputs.append((out, err))
        assert p.returncode == 0, err
        assert proj.report()["INTS"] == "1", f"--sandbox {sandbox}"
