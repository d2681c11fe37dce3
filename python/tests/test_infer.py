"""vla_py.infer: request parsing, batch gathering, the JSON-lines loop (fake engine), and the real engine
on the tiny model: left-padded batches answer like single requests, adapters load or are refused."""

from __future__ import annotations

import base64
import io
import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import PYTHON_ROOT, png_bytes, trainer_env
from vla_py.infer.protocol import EOF_MARK, Gatherer, ProtocolError, Request, error_answer, parse_request
from vla_py.infer.server import serve

B64 = base64.b64encode(png_bytes((200, 10, 10))).decode()


def req(i: int | str, **kw) -> dict:
    return {"id": str(i), "prompt": "What is in the image?", "images": [B64], "maxNewTokens": 4, "temperature": 0, "topP": None, "logprobs": False, "actionTokens": False, **kw}


# ---------------------------------------------------------------------------------------------
# parsing


def test_parse_request_accepts_a_valid_line():
    r = parse_request(req("a", topP=0.9, temperature=0.7, logprobs=True))
    assert r.id == "a" and r.max_new_tokens == 4 and r.temperature == 0.7 and r.top_p == 0.9 and r.logprobs
    assert not r.action_tokens and parse_request(req("b", actionTokens=True)).action_tokens
    assert r.images == [base64.b64decode(B64)]
    assert parse_request(req("t", images=[])).images == []


def test_parse_request_defaults_nothing():
    """Every field is required (InferenceRequestLine, data-schemas/python-border.ts): a missing one is named."""
    for name in ("images", "temperature", "topP", "logprobs", "actionTokens"):
        line = req("m")
        del line[name]
        with pytest.raises(ProtocolError, match=name) as e:
            parse_request(line)
        assert e.value.request_id == "m"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"id": ""}, "id"),
        ({"prompt": ""}, "prompt"),
        ({"images": "abc"}, "images"),
        ({"images": ["not base64!"]}, "image 0"),
        ({"maxNewTokens": 0}, "maxNewTokens"),
        ({"maxNewTokens": 2.5}, "maxNewTokens"),
        ({"maxNewTokens": True}, "maxNewTokens"),
        ({"temperature": -1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"topP": 0}, "topP"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"actionTokens": 1}, "actionTokens"),
        ({"extra": 1}, "extra"),
    ],
)
def test_parse_request_names_the_bad_field(change, field):
    with pytest.raises(ProtocolError) as e:
        parse_request({**req("x"), **change})
    assert field in str(e.value)
    # the id is kept for the answer whenever it was usable
    assert e.value.request_id == (None if change.get("id") == "" else "x")


def test_error_answer_shape():
    assert error_answer("a", "bad_request", "m") == {"id": "a", "error": {"code": "bad_request", "message": "m"}}
    with pytest.raises(AssertionError):
        error_answer("a", "nonsense", "m")


# ---------------------------------------------------------------------------------------------
# gathering


def _r(i: int, temperature: float = 0, images: int = 1) -> Request:
    return Request(str(i), "p", [b"x"] * images, 4, temperature)


def test_gatherer_takes_what_is_pending_up_to_the_limit():
    q: queue.Queue = queue.Queue()
    for i in range(11):
        q.put(_r(i))
    q.put(EOF_MARK)
    g = Gatherer(q, max_batch=4, window_s=0.05)
    sizes = []
    while (b := g.next_batch()) is not None:
        sizes.append([r.id for r in b])
    assert sizes == [["0", "1", "2", "3"], ["4", "5", "6", "7"], ["8", "9", "10"]]


def test_gatherer_waits_only_the_window_for_more():
    q: queue.Queue = queue.Queue()
    g = Gatherer(q, max_batch=8, window_s=0.05)
    q.put(_r(0))
    threading.Timer(0.01, lambda: q.put(_r(1))).start()
    threading.Timer(0.3, lambda: q.put(_r(2))).start()
    t0 = time.monotonic()
    assert [r.id for r in g.next_batch()] == ["0", "1"]
    assert time.monotonic() - t0 < 0.25
    assert [r.id for r in g.next_batch()] == ["2"]


def test_gatherer_keeps_different_sampling_for_a_later_batch_in_order():
    q: queue.Queue = queue.Queue()
    for r in [_r(0), _r(1, temperature=0.7), _r(2), _r(3, images=0), _r(4, temperature=0.7), _r(5)]:
        q.put(r)
    q.put(EOF_MARK)
    g = Gatherer(q, max_batch=8, window_s=0.01)
    batches = []
    while (b := g.next_batch()) is not None:
        batches.append([r.id for r in b])
    assert batches == [["0", "2", "5"], ["1", "4"], ["3"]]


def test_sampling_key_ignores_top_p_when_greedy():
    a, b = _r(0), _r(1)
    b.top_p = 0.5
    assert a.sampling_key() == b.sampling_key()


# ---------------------------------------------------------------------------------------------
# the loop, with a fake engine


class FakeEngine:
    def __init__(self, fail_ids=()):
        self.batches: list[list[str]] = []
        self.fail_ids = set(fail_ids)

    def __call__(self, batch):
        self.batches.append([r.id for r in batch])
        if any(r.id in self.fail_ids for r in batch):
            raise RuntimeError("boom")
        return [{"id": r.id, "text": r.prompt.upper(), "inputTokens": 1, "outputTokens": 1, "batchSize": len(batch)} for r in batch]


def _run(lines: list[str], engine, **kw) -> list[dict]:
    out: list[dict] = []
    code = serve(io.StringIO("".join(l + "\n" for l in lines)), out.append, engine, **kw)
    assert code == 0
    return out


def test_serve_batches_pending_requests_and_answers_each_by_id():
    engine = FakeEngine()
    lines = [json.dumps(req(i, prompt=f"q{i}")) for i in range(10)]
    out = _run(lines, engine, max_batch=4, window_s=0.05)
    by_id = {a["id"]: a for a in out}
    assert set(by_id) == {str(i) for i in range(10)}
    assert all(by_id[str(i)]["text"] == f"Q{i}" for i in range(10))
    assert [len(b) for b in engine.batches] == [4, 4, 2]
    assert max(a["batchSize"] for a in out) == 4


def test_serve_answers_bad_lines_at_once_and_goes_on():
    engine = FakeEngine()
    out = _run(["not json", json.dumps({"prompt": "no id"}), json.dumps(req("bad", maxNewTokens=0)), json.dumps(req("ok"))], engine)
    errors = [a for a in out if "error" in a]
    assert [e["id"] for e in errors] == [None, None, "bad"]
    assert all(e["error"]["code"] == "bad_request" for e in errors)
    assert [a["id"] for a in out if "text" in a] == ["ok"]


def test_a_failing_batch_is_retried_one_by_one_so_only_the_bad_request_fails():
    engine = FakeEngine(fail_ids={"2"})
    out = _run([json.dumps(req(i)) for i in range(4)], engine, window_s=0.05)
    by_id = {a["id"]: a for a in out}
    assert by_id["2"]["error"]["code"] == "server" and "boom" in by_id["2"]["error"]["message"]
    assert all("text" in by_id[str(i)] for i in (0, 1, 3))
    assert engine.batches[0] == ["0", "1", "2", "3"] and len(engine.batches) == 5


def test_prepare_errors_are_bad_requests():
    def prepare(r):
        if r.id == "x":
            raise ProtocolError("image 0 is not a readable image", r.id)

    out = _run([json.dumps(req("x")), json.dumps(req("y"))], FakeEngine(), prepare=prepare)
    assert {a["id"]: ("error" in a) for a in out} == {"x": True, "y": False}


# ---------------------------------------------------------------------------------------------
# the real engine on the tiny model


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    from vla_py.infer import engine

    return engine.load(str(tiny_model_dir), device="cpu", dtype="float32")


def _prepared(i, prompt, colors, max_new=6, logprobs=True):
    from vla_py.infer import engine

    r = Request(str(i), prompt, [png_bytes(c, size=(40 + 8 * i, 32)) for c in colors], max_new, 0.0, None, logprobs)
    r.payload = engine.decode_images(r)
    return r


def test_left_padded_batch_answers_like_single_requests(loaded):
    from vla_py.infer import engine

    reqs = [
        _prepared(0, "What is in the image?", [(200, 0, 0)]),
        _prepared(1, "Is the gripper open or closed? How many objects are there? Describe the scene.", [(0, 200, 0), (0, 0, 200)], max_new=3),
        _prepared(2, "yes or no", [(10, 10, 10)], max_new=8),
    ]
    batched = engine.generate_batch(loaded, reqs)
    assert [a["id"] for a in batched] == ["0", "1", "2"]
    assert all(a["batchSize"] == 3 for a in batched)
    for r, a in zip(reqs, batched):
        single = engine.generate_batch(loaded, [r])[0]
        assert single["batchSize"] == 1
        assert a["text"] == single["text"]
        assert a["inputTokens"] == single["inputTokens"] > 0
        assert a["outputTokens"] == single["outputTokens"] <= r.max_new_tokens
        assert a["logprobs"] == pytest.approx(single["logprobs"], abs=1e-4)
    # the two-image prompt is longer than the others (more image tokens), and its own limit holds
    assert batched[1]["inputTokens"] > batched[0]["inputTokens"]
    assert batched[1]["outputTokens"] <= 3


def test_an_answer_cut_at_max_new_tokens_is_marked_truncated(loaded):
    """truncated: the request's own limit was reached without an end-of-sequence token."""
    from vla_py.infer import engine

    short = _prepared(0, "Describe the scene in detail.", [(200, 0, 0)], max_new=2, logprobs=False)
    roomy = _prepared(1, "What is it?", [(0, 200, 0)], max_new=40, logprobs=False)
    batched = engine.generate_batch(loaded, [short, roomy])
    for r, a in zip([short, roomy], batched):
        assert a["truncated"] == engine.generate_batch(loaded, [r])[0]["truncated"]
        if a["outputTokens"] < r.max_new_tokens:
            assert a["truncated"] is False
    # Two new tokens are not enough for the tiny model (random weights) to finish its answer.
    assert batched[0]["outputTokens"] == 2 and batched[0]["truncated"] is True


def test_bad_image_is_bad_input():
    from vla_py.infer import engine

    with pytest.raises(engine.BadInput):
        engine.decode_images(Request("x", "p", [b"not an image"], 4, 0.0))


def _make_adapter(model_dir: Path, out: Path, seed: int = 1) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    cfg = LoraConfig(r=4, lora_alpha=16, target_modules=r".*language_model.*\.(q_proj|v_proj|o_proj)", init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(out)
    return out


def _other_base(tiny_model_dir: Path, out: Path) -> Path:
    """The tiny model with another hidden size: same architecture, weights of other shapes."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    cfg = AutoConfig.from_pretrained(tiny_model_dir)
    cfg.text_config.hidden_size = 96
    cfg.text_config.intermediate_size = 192
    AutoModelForImageTextToText.from_config(cfg).save_pretrained(out)
    for f in tiny_model_dir.iterdir():
        if f.name not in ("config.json", "model.safetensors", "generation_config.json"):
            shutil.copy(f, out / f.name)
    return out


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    other = _other_base(tiny_model_dir, root / "other-base")
    return {
        "good": _make_adapter(tiny_model_dir, root / "good"),
        "other_base": other,
        "foreign": _make_adapter(other, root / "foreign"),
    }


def test_adapter_changes_the_logits(tiny_model_dir, adapters, loaded):
    from vla_py.infer import engine

    with_adapter = engine.load(str(tiny_model_dir), str(adapters["good"]), device="cpu", dtype="float32")
    assert with_adapter.adapter_base == str(tiny_model_dir)
    r = _prepared(0, "What is in the image?", [(200, 0, 0)])
    a = engine.generate_batch(loaded, [r])[0]
    b = engine.generate_batch(with_adapter, [r])[0]
    assert a["logprobs"] != pytest.approx(b["logprobs"], abs=1e-4)


def test_adapter_of_another_base_is_refused_by_its_recorded_base(tiny_model_dir, adapters):
    from vla_py.infer import engine

    with pytest.raises(engine.LoadError) as e:
        engine.load(str(tiny_model_dir), str(adapters["foreign"]), device="cpu")
    assert e.value.code == "adapter_mismatch"
    assert str(adapters["other_base"]) in str(e.value) and str(tiny_model_dir) in str(e.value)
    assert "hidden_size 96 vs 64" in str(e.value)


def test_adapter_of_another_base_is_refused_by_its_shapes(tiny_model_dir, adapters, tmp_path):
    """The recorded base says nothing certain (a hub id): loading it finds the shapes do not fit."""
    from vla_py.infer import engine

    copy = shutil.copytree(adapters["foreign"], tmp_path / "foreign-hub")
    cfg = json.loads((copy / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "someorg/tiny-vlm-96"
    (copy / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(engine.LoadError) as e:
        engine.load(str(tiny_model_dir), str(copy), device="cpu")
    assert e.value.code == "adapter_mismatch"
    assert "someorg/tiny-vlm-96" in str(e.value) and str(tiny_model_dir) in str(e.value) and "size mismatch" in str(e.value)


def test_adapter_of_another_base_is_refused_by_the_path_it_was_trained_from(tiny_model_dir, adapters, tmp_path):
    """Our trainer's adapters name a portable base (a hub id) and keep the local path in training_config.json:
    that path still tells, before any weight is loaded, that the adapter belongs to another base."""
    from vla_py.infer import engine

    copy = shutil.copytree(adapters["foreign"], tmp_path / "foreign-portable")
    cfg = json.loads((copy / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "someorg/tiny-vlm-96"
    (copy / "adapter_config.json").write_text(json.dumps(cfg))
    (copy / "training_config.json").write_text(json.dumps({"baseModel": str(adapters["other_base"])}))
    with pytest.raises(engine.LoadError) as e:
        engine.check_adapter_base(str(tiny_model_dir), str(copy))
    assert e.value.code == "adapter_mismatch"
    assert f"someorg/tiny-vlm-96 ({adapters['other_base']})" in str(e.value) and "hidden_size 96 vs 64" in str(e.value)


def test_missing_base_and_adapter_are_not_found(tiny_model_dir, tmp_path):
    from vla_py.infer import engine

    with pytest.raises(engine.LoadError) as e:
        engine.load(str(tmp_path / "nope"))
    assert e.value.code == "not_found" and str(tmp_path / "nope") in str(e.value)
    with pytest.raises(engine.LoadError) as e:
        engine.load(str(tiny_model_dir), str(tmp_path / "no-adapter"))
    assert e.value.code == "not_found" and "no-adapter" in str(e.value)


# ---------------------------------------------------------------------------------------------
# the process


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vla_py.infer", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=trainer_env(), cwd=str(PYTHON_ROOT),
    )


def test_process_protocol_end_to_end(tiny_model_dir):
    p = _spawn("--base-model", str(tiny_model_dir), "--device", "cpu", "--batch-window-ms", "200")
    lines = "".join(json.dumps(req(i, maxNewTokens=3)) + "\n" for i in range(5))
    # Action tokens asked of a model without an action-tokens adapter: refused, not answered as text.
    lines += json.dumps(req("at", actionTokens=True)) + "\n"
    out, err = p.communicate(lines, timeout=120)
    assert p.returncode == 0, err
    msgs = [json.loads(l) for l in out.splitlines()]
    assert msgs[0]["ready"] is True and msgs[0]["model"] == str(tiny_model_dir) and msgs[0]["adapter"] is None
    refused = [m for m in msgs[1:] if m.get("id") == "at"]
    assert refused == [{"id": "at", "error": {"code": "bad_request", "message": "actionTokens: no adapter is loaded (not an action-tokens adapter)"}}]
    answers = {m["id"]: m for m in msgs[1:] if m.get("id") != "at"}
    assert set(answers) == {str(i) for i in range(5)}
    assert all(m["outputTokens"] <= 3 and m["inputTokens"] > 0 for m in answers.values())
    assert max(m["batchSize"] for m in answers.values()) == 5
    assert "batch of 5 answered" in err


def test_process_reports_a_load_failure_as_its_first_line(tmp_path):
    p = _spawn("--base-model", str(tmp_path / "missing"))
    out, _ = p.communicate("", timeout=120)
    assert p.returncode == 2
    first = json.loads(out.splitlines()[0])
    assert first == {"ready": False, "error": {"code": "not_found", "message": f"base model directory {tmp_path / 'missing'} does not exist"}}


def test_action_tokens_are_decoded_by_ids_with_the_adapters_mapping(tiny_model_dir, adapters, tmp_path):
    """An action-tokens adapter's answer: the mapped ids it generates become digits, decoded by id."""
    import torch

    from vla_py.infer import engine
    from vla_py.train import action_tokens as at

    adapter = shutil.copytree(adapters["good"], tmp_path / "at-adapter")
    plain_model = engine.load(str(tiny_model_dir), str(adapter), device="cpu", dtype="float32")
    assert plain_model.action_mapping is None
    tok = plain_model.processor.tokenizer
    # The ids the adapter generates greedily, seen where the engine decodes them.
    seen: list[list[int]] = []
    decode = tok.decode
    tok.decode = lambda ids, **kw: seen.append(list(ids)) or decode(ids, **kw)
    try:
        prompt = "Output only the action chunk"
        plain = engine.generate_batch(plain_model, [_prepared(0, prompt, [(200, 0, 0)], max_new=12, logprobs=False)])[0]["text"]
    finally:
        tok.decode = decode
    generated = seen[-1]
    # The decoding maps whatever ids the mapping names, so the generated ones serve (selection is the trainer's test).
    usable = list(dict.fromkeys(generated))[:10]
    rest = [i for i in at.pick_least_likely(tok, torch.arange(len(tok), dtype=torch.float32), k=20) if i not in usable]
    mapping = at.build_mapping(tok, usable + rest[: 10 - len(usable)])
    at.save_mapping(mapping, adapter)

    with_mapping = engine.load(str(tiny_model_dir), str(adapter), device="cpu", dtype="float32")
    assert with_mapping.action_mapping == mapping
    r = _prepared(0, prompt, [(200, 0, 0)], max_new=12, logprobs=False)
    r.action_tokens = True
    mapped = engine.generate_batch(with_mapping, [r])[0]["text"]
    assert mapped == at.decode_action_ids(tok, generated, mapping, skip_special_tokens=True)
    assert mapped != plain and any(c.isdigit() for c in mapped)
    # Without the flag the same adapter answers text, as before.
    assert engine.generate_batch(with_mapping, [_prepared(0, prompt, [(200, 0, 0)], max_new=12, logprobs=False)])[0]["text"] == plain
