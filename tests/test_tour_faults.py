"""A killed tour takes its worker processes with it: SIGTERM, SIGINT, and kill -9 of the tour's
own process. Before, the workers outlived it, reparented, and went on writing figures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a parent's death reaches workers on Linux"
)

# stands in for an experiment: says it started, then works for a minute, then writes a figure
FAKE = """
import os, time
from pathlib import Path

def slow(experiment_id, ctx):
    out = Path(ctx.out)
    (out / f"{experiment_id}.pid").write_text(str(os.getpid()))
    time.sleep(60)
    (out / f"{experiment_id}.late.png").write_text("written after the tour was killed")
"""

TOUR = """
import sys
sys.path.insert(0, {tmp!r})
import fake
from firstorder import tour
tour._run_by_id = fake.slow  # the workers get it by reference: fake.slow
try:
    tour.run_tour({out!r}, only=["C1", "C2"], jobs=2, progress=False)
except KeyboardInterrupt:  # as the command line stops on Ctrl-C
    sys.exit(130)
"""


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_the_workers_die_with_the_tour(tmp_path, sig):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "fake.py").write_text(textwrap.dedent(FAKE))
    code = TOUR.format(tmp=str(tmp_path), out=str(out))
    tour = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        # two workers start (each imports torch: seconds on a busy machine)
        started = wait_until(lambda: len(list(out.glob("*.pid"))) == 2, 120)
        assert started, tour.stderr.read().decode() if tour.poll() is not None else "no start"
        workers = [int(p.read_text()) for p in out.glob("*.pid")]
        assert all(alive(pid) for pid in workers)
        tour.send_signal(sig)
        tour.wait(timeout=60)
        assert wait_until(lambda: not any(alive(pid) for pid in workers), 10), workers
        assert not list(out.glob("*.late.png"))
        if sig != signal.SIGKILL:  # SIGTERM stops it as Ctrl-C does, and nothing else fails
            assert tour.returncode == 130
            assert b"Traceback" not in tour.stderr.read()
    finally:
        if tour.poll() is None:
            tour.kill()
        for p in out.glob("*.pid"):  # never leave a process behind, even when the test fails
            pid = int(p.read_text())
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
