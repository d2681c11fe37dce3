"""Children of a worker run in their own process group, so a SIGKILLed worker would leave them running
alone; each watches the worker's PID (VLA_PARENT_PID) and stops itself once it is gone."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Asks Linux to SIGKILL this process the moment the worker that started it exits (prctl
    PR_SET_PDEATHSIG), when that worker (VLA_PARENT_PID) is our direct parent. Unlike `watch_parent`
    it needs no Python thread to get the GIL and cannot be fooled by a reused PID. True when set."""
    raw = os.environ.get("VLA_PARENT_PID")
    if not sys.platform.startswith("linux") or not raw or not raw.isdigit() or os.getppid() != int(raw):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    # The parent may have exited before the request: then we are someone else's child already.
    if os.getppid() != int(raw):
        os._exit(0)
    return True


def watch_parent(on_gone: Callable[[int], None], interval: float = 1.0) -> None:
    """Calls `on_gone(parent_pid)` from a daemon thread once VLA_PARENT_PID no longer exists."""
    raw = os.environ.get("VLA_PARENT_PID")
    if not raw or not raw.isdigit():
        return
    parent = int(raw)

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                on_gone(parent)
                return
            except PermissionError:
                pass

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
