"""die_with_parent: a worker's child dies with the worker even when no Python thread of it can run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import PYTHON_ROOT, trainer_env

# A "worker" that starts a child asking for PR_SET_PDEATHSIG, prints the child's PID, and waits.
# The child then spins in C code without releasing the GIL (a polling thread could never run).
WORKER = r"""
import os, subprocess, sys
env = dict(os.environ, VLA_PARENT_PID=str(os.getpid()))
child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, start_new_session=True)
print(child.pid, flush=True)
child.wait()
"""
CHILD = r"""
import sys
from vla_py.parent_watch import die_with_parent
assert die_with_parent(), "PR_SET_PDEATHSIG was not set"
print("armed", file=sys.stderr, flush=True)
import re
re.match(r"(a+)+$", "a" * 64 + "b")  # catastrophic backtracking: holds the GIL for ages
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_child_is_killed_when_its_worker_is_sigkilled() -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", f"CHILD = {CHILD!r}\n{WORKER}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=trainer_env(),
        cwd=str(PYTHON_ROOT),
    )
    child = 0
    try:
        assert worker.stdout is not None and worker.stderr is not None
        child = int(worker.stdout.readline())
        assert worker.stderr.readline().strip() == "armed"
        assert _alive(child)
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 30
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        if worker.poll() is None:
            worker.kill()
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)


def test_not_armed_when_the_named_parent_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    from vla_py.parent_watch import die_with_parent

    monkeypatch.setenv("VLA_PARENT_PID", "1" if os.getppid() != 1 else "2")
    assert die_with_parent() is False
    monkeypatch.delenv("VLA_PARENT_PID")
    assert die_with_parent() is False
