"""Request parsing, answers, and the batch-gathering rule: pure, no torch, unit-tested."""

from __future__ import annotations

import base64
import binascii
import math
import queue
import time
from dataclasses import dataclass, field
from typing import Any, Callable

#: Error codes shared with the Node side (activities/vqa/backends/types.ts BackendErrorCode).
ERROR_CODES = ("not_found", "bad_request", "server", "adapter_mismatch", "malformed")

MAX_NEW_TOKENS_LIMIT = 4096
_FIELDS = {"id", "prompt", "images", "maxNewTokens", "temperature", "topP", "logprobs", "actionTokens"}


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


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_request(obj: Any) -> Request:
    """Validates one decoded request line; raises ProtocolError naming the field."""
    if not isinstance(obj, dict):
        raise ProtocolError("a request must be a JSON object")
    rid = obj.get("id")
    if not isinstance(rid, str) or not rid:
        raise ProtocolError('"id" must be a non-empty string')
    extra = sorted(set(obj) - _FIELDS)
    if extra:
        raise ProtocolError(f"unknown fields {extra}", rid)
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ProtocolError('"prompt" must be a non-empty string', rid)
    images = obj.get("images", [])
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise ProtocolError('"images" must be a list of base64 strings', rid)
    decoded: list[bytes] = []
    for n, data in enumerate(images):
        try:
            decoded.append(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            raise ProtocolError(f"image {n} is not valid base64", rid) from None
    mnt = obj.get("maxNewTokens")
    if not isinstance(mnt, int) or isinstance(mnt, bool) or not 1 <= mnt <= MAX_NEW_TOKENS_LIMIT:
        raise ProtocolError(f'"maxNewTokens" must be an integer in [1, {MAX_NEW_TOKENS_LIMIT}]', rid)
    temperature = obj.get("temperature", 0)
    if not _number(temperature) or not 0 <= temperature <= 2:
        raise ProtocolError('"temperature" must be a number in [0, 2]', rid)
    top_p = obj.get("topP")
    if top_p is not None and (not _number(top_p) or not 0 < top_p <= 1):
        raise ProtocolError('"topP" must be a number in (0, 1]', rid)
    logprobs = obj.get("logprobs", False)
    if not isinstance(logprobs, bool):
        raise ProtocolError('"logprobs" must be a boolean', rid)
    action_tokens = obj.get("actionTokens", False)
    if not isinstance(action_tokens, bool):
        raise ProtocolError('"actionTokens" must be a boolean', rid)
    return Request(rid, prompt, decoded, mnt, float(temperature), None if top_p is None else float(top_p), logprobs, action_tokens)


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
