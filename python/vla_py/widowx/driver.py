"""``python -m vla_py.widowx``: one WidowX arm behind widowx_envs' robot server, driven by the
station worker over JSON lines (activities/robot/station/widowx-envs.ts). Each stdin line is a
request (the ``widowx-request`` border schema); each answer is one stdout line with the same id:
``{"id", "connected": true}``, ``{"id", "observation": {...}}`` or ``{"id", "error": {"code", "message"}}``.
Requests are served one at a time, in order, like the REQ socket beneath them."""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any

import numpy as np

from ..border import BorderError, validate
from ..parent_watch import die_with_parent, watch_parent
from .wire import (
    STATUS_EXECUTION_FAILURE,
    STATUS_NOT_INITIALIZED,
    STATUS_SUCCESS,
    ReqRepClient,
    WireError,
    action_config_json,
    frame_jpeg,
    state7,
)


class Arm:
    """The robot server's session: the REQ client plus what ``connect`` configured."""

    def __init__(self, req: dict):
        self.host: str = req["host"]
        self.port: int = req["port"]
        self.camera_key: str = req["cameraKey"]
        self.image_size: int = req["imageSize"]
        self.init_timeout_ms: int = req["initTimeoutMs"]
        self.env_params: dict = req["envParams"]
        self.client = ReqRepClient(self.host, self.port, req["timeoutMs"])

    def connect(self) -> None:
        """agentlace's handshake (the server's config must be widowx_envs'), then ``init``."""
        try:
            answer = self.client.request({"type": "hash"})
        except WireError as e:
            if e.code == "timeout":
                raise WireError("unreachable", f"no robot server answers at {self.client.endpoint} ({e}); is widowx_env_service --server running there?") from None
            raise
        want = action_config_json(self.port)
        got = answer.get("payload") if isinstance(answer, dict) else None
        if got != want:
            raise WireError("protocol_error", f"{self.client.endpoint} is not a widowx_envs robot server of this version: its config is {got!r}, expected {want!r}")
        self.act("init", {"env_params": self.env_params, "image_size": self.image_size}, self.init_timeout_ms)

    def act(self, key: str, payload: dict, timeout_ms: int | None = None) -> None:
        answer = self.client.request({"type": "act", "key": key, "payload": payload}, timeout_ms)
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == STATUS_SUCCESS:
            return
        if status == STATUS_NOT_INITIALIZED:
            raise WireError("not_ready", f"{key}: the robot server's arm is not initialised (status NOT_INITIALIZED); it runs in --test mode or init failed")
        if status == STATUS_EXECUTION_FAILURE:
            raise WireError("server_error", f"{key}: the robot server reports EXECUTION_FAILURE")
        raise WireError("protocol_error", f"{key}: the robot server answered {answer!r}, expected {{'status': 1}}")

    def observe(self) -> dict:
        obs = self.client.request({"type": "obs", "keys": {"image", "state", "full_image"}})
        if not isinstance(obs, dict):
            raise WireError("protocol_error", f"the observation is a {type(obs).__name__}, expected a dict")
        jpeg, width, height = frame_jpeg(obs, self.camera_key, self.image_size)
        return {"imageJpegB64": base64.b64encode(jpeg).decode("ascii"), "width": width, "height": height, "state": state7(obs)}

    def close(self) -> None:
        self.client.close()


def serve(lines: Any, write: Any) -> None:
    arm: Arm | None = None
    for line in lines:
        if not line.strip():
            continue
        rid: str | None = None
        try:
            try:
                req = json.loads(line)
            except json.JSONDecodeError as e:
                raise WireError("bad_request", f"the request line is not JSON: {e}") from None
            rid = req.get("id") if isinstance(req, dict) and isinstance(req.get("id"), str) else None
            try:
                validate("widowx-request", req, "request")
            except BorderError as e:
                raise WireError("bad_request", str(e)) from None
            op = req["op"]
            if op == "connect":
                if arm is not None:
                    arm.close()
                arm = Arm(req)
                arm.connect()
                write({"id": rid, "connected": True})
                continue
            if arm is None:
                raise WireError("not_ready", f"{op}: not connected to a robot server yet")
            if op == "reset":
                arm.act("reset", {})
            elif op == "step":
                # blocking: the server answers once the move is done, so one answer is one executed step.
                arm.act("step_action", {"action": np.asarray(req["action"], dtype=np.float64), "blocking": True})
            write({"id": rid, "observation": arm.observe()})
        except WireError as e:
            write({"id": rid, "error": {"code": e.code, "message": str(e)}})
    if arm is not None:
        arm.close()


def main() -> int:
    if not die_with_parent():
        watch_parent(lambda _pid: os._exit(0))

    def write(answer: dict) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    serve(sys.stdin, write)
    return 0
