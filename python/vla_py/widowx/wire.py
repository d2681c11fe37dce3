"""The client side of widowx_envs' robot server (widowx_env_service.WidowXActionServer), an agentlace
ActionServer: ZeroMQ REQ/REP, every message a pickled dict compressed as one lz4 frame
(docs/station-protocol.md, "widowx_envs robot server"). Pure codec and decoding here; the socket
lives in ``ReqRepClient``."""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

import lz4.frame
import numpy as np
import zmq
from PIL import Image

#: widowx_env_service.WidowXConfigs.DefaultActionConfig; the server answers a "hash" request with
#: this config as compact JSON and agentlace clients refuse a server whose config differs.
ACTION_KEYS = ["init", "move", "gripper", "reset", "step_action", "reboot_motor"]
OBSERVATION_KEYS = ["image", "state", "full_image"]
CONFIG_VERSION = "0.0.1"

#: WidowXStatus in widowx_env_service.py (NO_CONNECTION is the client's own "no answer").
STATUS_SUCCESS = 1
STATUS_EXECUTION_FAILURE = 2
STATUS_NOT_INITIALIZED = 3

JPEG_MAGIC = b"\xff\xd8\xff"


class WireError(Exception):
    """A failed exchange; ``code`` is one of the station's error codes (activities/robot/station/errors.ts)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def action_config_json(port: int) -> str:
    """The server's ActionConfig as agentlace serialises it (json.dumps(asdict(config)), compact)."""
    config = {
        "port_number": port,
        "action_keys": ACTION_KEYS,
        "observation_keys": OBSERVATION_KEYS,
        "broadcast_port": port + 1,
        "version": CONFIG_VERSION,
    }
    return json.dumps(config, separators=(",", ":"))


# What a robot server's answers may contain: plain containers and numpy arrays. Anything else in a
# pickle (a class that runs code when loaded) is refused rather than executed.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("_codecs", "encode"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"the answer pickles {module}.{name}; only containers and numpy arrays are accepted")
        return super().find_class(module, name)


def encode(message: dict) -> bytes:
    return lz4.frame.compress(pickle.dumps(message))


def decode(data: bytes) -> Any:
    try:
        raw = lz4.frame.decompress(data)
    except RuntimeError as e:
        raise WireError("protocol_error", f"the answer is not an lz4 frame ({e})") from None
    try:
        return _ArraysOnlyUnpickler(io.BytesIO(raw)).load()
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the server's, named here
        raise WireError("protocol_error", f"the answer is not a readable pickle: {e}") from None


class ReqRepClient:
    """agentlace's ReqRepClient behaviour: one request at a time, and a socket that timed out is
    replaced (a REQ socket cannot send again before it has received)."""

    def __init__(self, host: str, port: int, timeout_ms: int):
        self.endpoint = f"tcp://{host}:{port}"
        self.timeout_ms = timeout_ms
        self._context = zmq.Context()
        self._socket: zmq.Socket | None = None

    def _fresh_socket(self) -> zmq.Socket:
        if self._socket is not None:
            self._socket.close(linger=0)
        sock = self._context.socket(zmq.REQ)
        sock.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        self._socket = sock
        return sock

    def request(self, message: dict, timeout_ms: int | None = None) -> Any:
        """Sends ``message`` and returns the decoded answer; WireError('timeout') without one in time."""
        sock = self._socket or self._fresh_socket()
        limit = self.timeout_ms if timeout_ms is None else timeout_ms
        sock.setsockopt(zmq.RCVTIMEO, limit)
        try:
            sock.send(encode(message))
            answer = sock.recv()
        except zmq.Again:
            self._fresh_socket()
            raise WireError("timeout", f"no answer from {self.endpoint} within {limit} ms") from None
        except zmq.ZMQError as e:
            self._fresh_socket()
            raise WireError("unreachable", f"{self.endpoint}: {e}") from None
        return decode(answer)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        self._context.term()


def _to_uint8_hwc(array: np.ndarray, image_size: int, key: str) -> np.ndarray:
    """widowx_envs' processed images: float32 in [0, 1], CHW flattened (BridgeDataRailRLPrivateWidowX),
    stacked per camera as (ncam, 3*S*S); also accepted: (3, S, S), (S, S, 3) and uint8."""
    a = np.asarray(array)
    if a.ndim == 2 and a.shape[1] == 3 * image_size * image_size:
        a = a[0]  # the main camera, image_0
    if a.ndim == 1:
        if a.size != 3 * image_size * image_size:
            raise WireError("protocol_error", f"observation {key!r} has {a.size} values, expected 3x{image_size}x{image_size} (the init image_size)")
        a = a.reshape(3, image_size, image_size)
    if a.ndim == 4 and a.shape[0] >= 1:
        a = a[0]
    if a.ndim != 3 or (a.shape[0] != 3 and a.shape[2] != 3):
        raise WireError("protocol_error", f"observation {key!r} has shape {list(np.asarray(array).shape)}, expected a 3-channel image")
    if a.shape[0] == 3 and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        if not np.all(np.isfinite(a)):
            raise WireError("protocol_error", f"observation {key!r} holds NaN or infinite values")
        scale = 255.0 if float(a.max(initial=0.0)) <= 1.0 else 1.0
        a = np.clip(np.rint(a.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    return a


def frame_jpeg(obs: dict, camera_key: str, image_size: int, quality: int = 95) -> tuple[bytes, int, int]:
    """The observation's camera frame as a JPEG of image_size x image_size, RGB."""
    if camera_key not in obs:
        raise WireError("protocol_error", f"the observation has no {camera_key!r} (keys: {sorted(map(str, obs))})")
    value = obs[camera_key]
    if isinstance(value, (bytes, bytearray)):
        if not bytes(value[:3]) == JPEG_MAGIC:
            raise WireError("protocol_error", f"observation {camera_key!r} is bytes but not a JPEG")
        try:
            img = Image.open(io.BytesIO(bytes(value))).convert("RGB")
        except Exception as e:  # noqa: BLE001
            raise WireError("protocol_error", f"observation {camera_key!r} is not a readable JPEG: {e}") from None
        # agentlace's mat_to_jpeg is cv2.imencode, which writes the array as BGR; widowx_envs' arrays are
        # RGB, so the file's channels come out swapped: swapped back here, as jpeg_to_mat would.
        r, g, b = img.split()
        img = Image.merge("RGB", (b, g, r))
    elif isinstance(value, np.ndarray):
        img = Image.fromarray(_to_uint8_hwc(value, image_size, camera_key), "RGB")
    else:
        raise WireError("protocol_error", f"observation {camera_key!r} is a {type(value).__name__}, expected an image array or JPEG bytes")
    if img.size != (image_size, image_size):
        img = img.resize((image_size, image_size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue(), img.size[0], img.size[1]


def state7(obs: dict) -> list[float]:
    """widowx_envs' state: [x, y, z, roll, pitch, yaw, gripper] (transform2state of the end effector)."""
    raw = obs.get("state")
    if isinstance(raw, dict) and not raw:
        # WidowXActionServer's answer before init: camera noise and an empty state (e.g. a restarted server).
        raise WireError("not_ready", "the robot server's arm is not initialised (it answers an empty state); reset to init it again")
    try:
        a = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        a = np.zeros(0)
    if a.size != 7 or not np.all(np.isfinite(a)):
        shape = list(np.asarray(raw).shape) if isinstance(raw, np.ndarray) else type(raw).__name__
        raise WireError("protocol_error", f"observation 'state' must be 7 finite numbers [x, y, z, roll, pitch, yaw, gripper], got {shape}")
    return [float(v) for v in a]
