"""python -m vla_py.widowx's request loop: bad lines are answered by name, and a server that is not
widowx_envs' (another agentlace config) is refused at the handshake."""

from __future__ import annotations

import json
import threading

import zmq

from vla_py.widowx.driver import serve
from vla_py.widowx.wire import decode, encode


def run(lines: list[str]) -> list[dict]:
    answers: list[dict] = []
    serve(iter(lines), answers.append)
    return answers


def connect_line(port: int, timeout_ms: int = 2000) -> str:
    return json.dumps({"id": "c", "op": "connect", "host": "127.0.0.1", "port": port, "timeoutMs": timeout_ms, "initTimeoutMs": timeout_ms, "imageSize": 64, "cameraKey": "image", "envParams": {}})


def test_bad_lines_are_answered_naming_the_problem():
    answers = run(
        [
            "not json",
            json.dumps({"id": "a", "op": "observe"}),
            json.dumps({"id": "b", "op": "step", "action": [0, 0, 0, 0, 0, 1]}),
            json.dumps({"id": "d", "op": "step", "action": [0, 0, 0, 0, 0, 0, float("nan")]}),
        ]
    )
    assert answers[0]["id"] is None and answers[0]["error"]["code"] == "bad_request"
    assert answers[1] == {"id": "a", "error": {"code": "not_ready", "message": "observe: not connected to a robot server yet"}}
    assert answers[2]["error"] == {"code": "bad_request", "message": "request.action must contain at least 7 items"}
    assert answers[3]["error"] == {"code": "bad_request", "message": "request.action[6] must be a finite number"}


def test_a_server_with_another_agentlace_config_is_refused_at_the_handshake():
    context = zmq.Context()
    rep = context.socket(zmq.REP)
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    seen: list[dict] = []

    def serve_one() -> None:
        seen.append(decode(rep.recv()))
        rep.send(encode({"success": True, "payload": '{"port_number":1,"action_keys":[],"observation_keys":[],"broadcast_port":null,"version":"9"}'}))

    thread = threading.Thread(target=serve_one)
    thread.start()
    try:
        [answer] = run([connect_line(port)])
    finally:
        thread.join(5)
        rep.close(linger=0)
        context.term()
    assert seen == [{"type": "hash"}]
    assert answer["error"]["code"] == "protocol_error"
    assert f"tcp://127.0.0.1:{port} is not a widowx_envs robot server of this version" in answer["error"]["message"]
    assert '"version":"9"' in answer["error"]["message"]
