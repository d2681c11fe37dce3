"""Children of a worker run in their own process group, so a SIGKILLed worker would leave them running
alone; each watches the worker's PID (VLA_PARENT_PID) and stops itself once it is gone."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable


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
