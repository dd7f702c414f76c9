"""The README's 60-second tour is what the built binary prints: its manifest is run through
`check` (with the finding the tour shows, then fixed as the tour says), `--dry-run` and the
leak example, and the output is compared line by line with the README's blocks. Also: the
README keeps its three-line pitch and the two quick-start commands. The `plan` part of the tour
is rerun on a fresh store the same way."""

import re
import secrets
import string
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def tour():
    text = README.read_text()
    start = text.index("## A 60-second tour")
    return text[start:text.index("\n## ", start + 3)]


def blocks(section, lang=""):
    """The fenced code blocks of section whose info string is lang, as text."""
    found, current, info = [], None, None
    for line in section.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current, info = [], line.strip()[3:]
            else:
                if info == lang:
                    found.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return found


def transcript(block):
    """{command: [output lines]} of a `$ command` transcript block."""
    out, cmd = {}, None
    for line in block.splitlines():
        if line.startswith("$ "):
            cmd = line[2:]
            out[cmd] = []
        elif cmd is not None:
            out[cmd].append(line)
    return out


def test_pitch_and_quick_start():
    text = README.read_text()
    head = text.split("```", 1)[0]          # the title, the pitch, then the first example
    pitch = [l for l in head.splitlines()[1:] if l.strip()]
    assert len(pitch) == 3, pitch
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for cmd in ["./packaging/install-deps.sh && ./examples/demo.sh",
                "./packaging/install-deps.sh && ./tests/run-all.sh"]:
        assert cmd in quick, cmd
    assert "$ secrets-run plan" in tour()


def test_tour_output_is_the_binarys(proj):
    section = tour()
    manifest = blocks(section, "yaml")[0]
    transcripts = [transcript(b) for b in blocks(section) if b.startswith("$ ")]
    proj.manifest(manifest)
    # A throwaway token as long as the one the tour was captured with (the offsets depend on it).
    token = proj.register("".join(secrets.choice(string.ascii_letters) for _ in range(22)))
    env = {"NPM_TOKEN": token}

    def lines(result):
        return [l for l in (result.stdout + result.stderr).splitlines() if l]

    r = proj.run("check", env=env)
    assert r.status == 1 and sorted(lines(r)) == sorted(transcripts[0]["secrets-run check"]), r

    fixed = manifest.replace("    stages: [test, publish]",
                             "    environments: [dev]\n    stages: [test, publish]")
    assert fixed != manifest
    proj.manifest(fixed)
    r = proj.run("check", env=env)
    assert r.status == 0 and lines(r) == transcripts[1]["secrets-run check"], r
    r = proj.run("--dry-run", env=env)
    want = transcripts[1]["secrets-run --dry-run"]
    got = lines(r)
    assert r.status == 0 and got[0] == want[0] and got[2:] == want[2:], r   # [1]: sandbox layers

    cmd = next(c for t in transcripts for c in t if c.startswith("secrets-run sh -c"))
    want = next(t[cmd] for t in transcripts if cmd in t)
    script = cmd[len("secrets-run sh -c '"):-1]
    r = proj.run("sh", "-c", script, env=env)
    assert r.status == 123 and r.stdout.splitlines() == want[:2], r
    assert r.stderr.splitlines() == want[2:], r


def test_plan_tour_is_the_binarys(proj):
    section = tour()
    manifest = blocks(section, "yaml")[1]
    want = next(transcript(b) for b in blocks(section) if b.startswith("$ secrets-run plan"))
    proj.manifest(manifest)
    assert proj.run("store", "init").status == 0
    # a throwaway key, as long as base64 of 24 bytes like the one the tour was captured with
    key = proj.register("".join(secrets.choice(string.ascii_letters) for _ in range(32)))
    assert proj.run("store", "set", "STRIPE_KEY", input=key).status == 0

    r = proj.run("plan")
    # an age of seconds depends on when the step ran; everything else is exact
    def ages(lines):
        return [re.sub(r" \d+s ", " Ns ", line) for line in lines]
    assert r.status == 2 and ages(r.stdout.splitlines()) == ages(want["secrets-run plan"]), r
    r = proj.run("apply")
    first, second = _apply_outputs(section)
    assert r.status == 0 and r.stdout.splitlines() == first, r
    r = proj.run("apply")
    assert r.status == 0 and r.stdout.splitlines() == second, r


def _apply_outputs(section):
    """The outputs of the two `$ secrets-run apply` commands of the plan transcript (a dict
    would keep only one)."""
    block = next(b for b in blocks(section) if b.startswith("$ secrets-run plan"))
    outs, current = [], None
    for line in block.splitlines():
        if line.startswith("$ "):
            current = [] if line == "$ secrets-run apply" else None
            if current is not None:
                outs.append(current)
        elif current is not None:
            current.append(line)
    return outs
