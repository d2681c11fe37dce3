"""vla_py.widowx.wire: agentlace's framing and widowx_envs' observation formats, as the robot server sends them."""

from __future__ import annotations

import io
import os
import pickle

import lz4.frame
import numpy as np
import pytest
from PIL import Image

from vla_py.widowx.wire import WireError, action_config_json, decode, encode, frame_jpeg, state7

S = 32


def picture() -> np.ndarray:
    """An RGB test card whose channels differ, so a swapped or transposed decoding shows."""
    y, x = np.mgrid[0:S, 0:S]
    return np.stack([x * 8, y * 8, np.full((S, S), 40)], axis=-1).astype(np.uint8)


def decoded(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.int16)


def test_the_handshake_config_is_widowx_envs_default_action_config_as_agentlace_writes_it():
    assert action_config_json(5556) == (
        '{"port_number":5556,"action_keys":["init","move","gripper","reset","step_action","reboot_motor"],'
        '"observation_keys":["image","state","full_image"],"broadcast_port":5557,"version":"0.0.1"}'
    )


def test_messages_are_lz4_framed_pickles_and_arrays_come_back():
    msg = {"type": "obs", "keys": {"image", "state"}, "state": np.arange(7, dtype=np.float64)}
    wire = encode(msg)
    assert wire[:4] == b"\x04\x22\x4d\x18"  # the lz4 frame magic
    back = decode(wire)
    assert back["keys"] == {"image", "state"}
    np.testing.assert_array_equal(back["state"], np.arange(7))


def test_a_pickle_that_would_run_code_is_refused_not_executed():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(WireError, match=r"pickles posix\.system|pickles os\.system") as e:
        decode(lz4.frame.compress(pickle.dumps({"status": Evil()})))
    assert e.value.code == "protocol_error"
    with pytest.raises(WireError, match="not an lz4 frame"):
        decode(b"plain bytes")


@pytest.mark.parametrize(
    "as_sent",
    [
        lambda p: (np.float32(p.transpose(2, 0, 1).flatten()) / 255.0)[None, :],  # BridgeDataRailRLPrivateWidowX, stacked per camera
        lambda p: np.float32(p.transpose(2, 0, 1).flatten()) / 255.0,
        lambda p: p.transpose(2, 0, 1).copy(),
        lambda p: p,
    ],
    ids=["ncam-chw-flat-float", "chw-flat-float", "chw-uint8", "hwc-uint8"],
)
def test_image_arrays_in_each_layout_decode_to_the_same_picture(as_sent):
    jpeg, w, h = frame_jpeg({"image": as_sent(picture())}, "image", S)
    assert (w, h) == (S, S)
    assert np.abs(decoded(jpeg) - picture()).mean() < 3


def test_full_image_is_cv2s_jpeg_of_the_rgb_array_and_is_resized():
    big = np.asarray(Image.fromarray(picture()).resize((64, 48)))
    out = io.BytesIO()
    # cv2.imencode reads the array as BGR: the file holds the channels swapped.
    Image.fromarray(big[:, :, ::-1].copy()).save(out, format="JPEG", quality=95)
    jpeg, w, h = frame_jpeg({"full_image": out.getvalue()}, "full_image", S)
    assert (w, h) == (S, S)
    assert np.abs(decoded(jpeg) - picture()).mean() < 6


def test_bad_observations_are_named():
    with pytest.raises(WireError, match=r"observation 'image' has 100 values, expected 3x32x32"):
        frame_jpeg({"image": np.zeros(100, dtype=np.float32)}, "image", S)
    with pytest.raises(WireError, match=r"the observation has no 'full_image' \(keys: \['image', 'state'\]\)"):
        frame_jpeg({"image": picture(), "state": []}, "full_image", S)
    with pytest.raises(WireError, match="is bytes but not a JPEG"):
        frame_jpeg({"full_image": b"\x89PNG...."}, "full_image", S)
    with pytest.raises(WireError, match=r"'state' must be 7 finite numbers .*got \[3\]"):
        state7({"state": np.zeros(3)})
    with pytest.raises(WireError, match="not initialised") as e:
        state7({"state": {}})  # what an uninitialised server sends
    assert e.value.code == "not_ready"
    assert state7({"state": np.array([0.3, 0, 0.15, 0, 0, 0, 1.0])}) == [0.3, 0.0, 0.15, 0.0, 0.0, 0.0, 1.0]
