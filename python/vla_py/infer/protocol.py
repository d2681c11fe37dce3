"""Request parsing, answers, and the batch-gathering rule: pure, no torch, unit-tested."""

from __future__ import annotations

import base64
import binascii
import queue
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..border import BorderError, validate

#: Error codes shared with the Node side (activities/vqa/backends/types.ts BackendErrorCode).
ERROR_CODES = ("not_found", "bad_request", "server", "adapter_mismatch", "malformed")


class ProtocolError(ValueError):
    """A request line that cannot be served; answered with code ``bad_request``."""

    def __init__(self, message: str, request_id: str | None = None):
        super().__init__(message)
        self.request_id = request_id


@dataclass
class Request:
    id: str
    prompt: str
    images: list[bytes]
    max_new_tokens: int
    temperature: float
    top_p: float | None = None
    logprobs: bool = False
    #: Decode the adapter's action-token ids back to digits (VLM2VLA-AT action chunks).
    action_tokens: bool = False
    #: Filled by the server before batching (decoded images); kept opaque here.
    payload: Any = field(default=None, repr=False)

    def sampling_key(self) -> tuple:
        """Requests batch together only when they sample the same way and agree on having images."""
        greedy = self.temperature == 0
        return (greedy, None if greedy else self.temperature, None if greedy else self.top_p, len(self.images) > 0)


def parse_request(obj: Any) -> Request:
    """Validates one decoded request line against ``vla_py/schemas/inference-request.schema.json``
    (InferenceRequestLine in data-schemas/python-border.ts: every field required, no defaults here);
    raises ProtocolError naming the field."""
    rid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) and obj.get("id") else None
    try:
        validate("inference-request", obj, root="request")
    except BorderError as e:
        raise ProtocolError(str(e), rid) from None
    decoded: list[bytes] = []
    for n, data in enumerate(obj["images"]):
        try:
            decoded.append(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            raise ProtocolError(f"request.images[{n}]: image {n} is not valid base64", rid) from None
    top_p = obj["topP"]
    return Request(rid, obj["prompt"], decoded, obj["maxNewTokens"], float(obj["temperature"]), None if top_p is None else float(top_p), obj["logprobs"], obj["actionTokens"])


def error_answer(request_id: str | None, code: str, message: str) -> dict:
    assert code in ERROR_CODES, code
    return {"id": request_id, "error": {"code": code, "message": message}}


#: Marks the end of input in the request queue.
EOF_MARK = object()


class Gatherer:
    """Takes requests off a queue in batches.

    ``next_batch`` blocks for the first request, then keeps taking requests until ``max_batch`` are
    gathered or ``window_s`` has passed since the first arrived. Requests whose sampling settings differ
    from the first are held back for a later batch, in arrival order. Returns ``None`` once the input has
    ended and nothing is held back.
    """

    def __init__(self, source: "queue.Queue[Any]", max_batch: int = 8, window_s: float = 0.005, clock: Callable[[], float] = time.monotonic):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.source = source
        self.max_batch = max_batch
        self.window_s = window_s
        self.clock = clock
        self.held: list[Request] = []
        self.ended = False

    def _take(self, timeout: float | None) -> Request | None:
        if self.ended:
            return None
        try:
            item = self.source.get(timeout=timeout) if timeout is None or timeout > 0 else self.source.get_nowait()
        except queue.Empty:
            return None
        if item is EOF_MARK:
            self.ended = True
            return None
        return item

    def next_batch(self) -> list[Request] | None:
        if self.held:
            first = self.held.pop(0)
        else:
            first = self._take(None)
            if first is None:
                return None
        key = first.sampling_key()
        batch = [first]
        # Matching requests that were held back join first, in order.
        keep: list[Request] = []
        for r in self.held:
            if len(batch) < self.max_batch and r.sampling_key() == key:
                batch.append(r)
            else:
                keep.append(r)
        self.held = keep
        deadline = self.clock() + self.window_s
        while len(batch) < self.max_batch and not self.ended:
            left = deadline - self.clock()
            r = self._take(left if left > 0 else 0)
            if r is None:
                # Nothing more arrived in the window (or the queue is momentarily empty past it).
                if left <= 0 or self.ended:
                    break
                continue
            if r.sampling_key() == key:
                batch.append(r)
            else:
                self.held.append(r)
        return batch
