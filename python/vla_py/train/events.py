"""The trainer's stdout contract: one JSON object per line (TrainerEvent in data-schemas/training.ts).

Only the main process writes events. ``redirect_stdout_to_stderr`` keeps a private handle on the real
stdout for events and points fd 1 at stderr, so nothing else (library prints, progress bars) can land
among the events.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, TextIO

_events_out: TextIO | None = None

# Exit statuses
EXIT_ERROR = 2
EXIT_INTERRUPTED = 143


class TrainerError(Exception):
    """An error with a TrainerEvent code: emitted as an `error` event, exit status 2."""

    def __init__(self, code: str, message: str, shard: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.shard = shard


class CorruptShard(TrainerError):
    def __init__(self, shard: str, message: str):
        super().__init__("corrupt_shard", f"corrupt shard {shard}: {message}", shard=shard)


class BadConfig(TrainerError):
    def __init__(self, message: str):
        super().__init__("bad_config", message)


class Interrupted(Exception):
    """SIGTERM: stop at a step boundary, exit 143."""


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def redirect_stdout_to_stderr() -> None:
    """Events keep the real stdout; everything else written to fd 1 or sys.stdout goes to stderr."""
    global _events_out
    if _events_out is not None:
        return
    sys.stdout.flush()
    fd = os.dup(1)
    _events_out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (1e308 if value > 0 else -1e308)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def emit(event: str, **fields: Any) -> None:
    if not is_main_process():
        return
    out = _events_out or sys.stdout
    out.write(json.dumps(_clean({"event": event, **fields})) + "\n")
    out.flush()


def emit_error(code: str, message: str, shard: str | None = None) -> None:
    fields: dict[str, Any] = {"code": code, "message": message}
    if shard is not None:
        fields["shard"] = shard
    emit("error", **fields)
