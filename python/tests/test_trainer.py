"""End-to-end: the trainer as the activity runs it (a subprocess; JSON-line events on stdout)."""

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from conftest import base_config, check_event, make_samples, parse_events, run_trainer, start_trainer, write_shard


def _hash_dir(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*")) if p.is_file()}


def _steps(events):
    return [e for e in events if e["event"] == "step"]


def _read_until(proc, predicate, timeout=150):
    """Reads events from a running trainer until predicate(event) holds; returns the events read."""
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        e = json.loads(line)
        events.append(e)
        if predicate(e):
            return events
    raise AssertionError(f"condition not reached; events so far: {events}; stderr: {proc.stderr.read()[-3000:]}")


@pytest.fixture(scope="module")
def overfit_run(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("overfit")
    before = _hash_dir(tiny_model_dir)
    shard = write_shard(tmp / "train" / "shard-000000.tar", make_samples(2, 0))
    val = write_shard(tmp / "validation" / "shard-000000.tar", make_samples(2, 0))
    cfg = base_config(
        tiny_model_dir, {"train": [str(shard)], "validation": [str(val)]}, tmp / "run",
        maxSteps=30, epochs=100, learningRate=1e-2, perDeviceBatchSize=2, checkpointEvery=100, evalEvery=10,
    )
    rc, events, stderr = run_trainer(cfg, tmp)
    return {"rc": rc, "events": events, "stderr": stderr, "cfg": cfg, "tmp": tmp, "hash_before": before}


def test_events_and_loss_falls(overfit_run):
    assert overfit_run["rc"] == 0, overfit_run["stderr"][-3000:]
    events = overfit_run["events"]
    for e in events:
        check_event(e)
    assert events[0]["event"] == "start"
    assert events[0] == {**events[0], "totalSteps": 30, "resumedFromStep": 0, "samples": 2}
    assert 0 < events[0]["trainableParameters"] < events[0]["totalParameters"]
    steps = _steps(events)
    assert [s["step"] for s in steps] == list(range(1, 31))
    assert steps[-1]["loss"] < 0.5 * steps[0]["loss"], [s["loss"] for s in steps]
    assert all(s["tokensPerSecond"] > 0 for s in steps) and steps[-1]["etaSeconds"] == 0
    # evaluated every evalEvery steps, the last step once (before its checkpoint)
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [10, 20, 30]
    assert [e["event"] for e in events[-3:]] == ["eval", "checkpoint", "done"]
    step_events = [e["step"] for e in events if e["event"] in ("step", "eval")]
    assert step_events == sorted(step_events)  # each evaluation follows its step
    done = events[-1]
    out = Path(overfit_run["cfg"]["outputDir"])
    assert done["step"] == 30 and done["adapterDir"] == str(out / "adapter")
    assert {"train_loss", "train_runtime", "train_tokens_per_second", "eval_loss"} <= set(done["metrics"])
    assert done["metrics"]["eval_loss"] == evals[-1]["loss"]
    assert evals[-1]["loss"] < evals[0]["loss"]  # the validation samples are the training ones: it overfits them too
    ckpt = events[-2]["dir"]
    assert ckpt == str(out / "checkpoints" / "checkpoint-30")
    assert {"adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"} <= {p.name for p in Path(ckpt).iterdir()}
    adapter = out / "adapter"
    assert json.loads((adapter / "training_config.json").read_text()) == overfit_run["cfg"]
    card = (adapter / "README.md").read_text()
    assert "abc123" in card and "rank 8" in card and "language" in card and "30 optimizer steps" in card
    assert not list((out / "checkpoints").glob(".tmp-*"))


def test_tensorboard_event_files_hold_loss_eval_loss_and_lr(overfit_run):
    """Read with TensorBoard's own reader: the scalars people plot, at the steps the events name."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert overfit_run["rc"] == 0, overfit_run["stderr"][-3000:]
    assert "reporting to tensorboard" in overfit_run["stderr"] and "WANDB_API_KEY not set" in overfit_run["stderr"]
    logdir = Path(overfit_run["cfg"]["outputDir"]) / "tensorboard"
    assert list(logdir.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "train/learning_rate", "eval/loss"} <= set(tags), tags
    events = overfit_run["events"]
    losses = {e["step"]: e["loss"] for e in _steps(events)}
    loss = acc.Scalars("train/loss")
    assert [s.step for s in loss] == list(range(1, 31))
    assert [s.value for s in loss] == pytest.approx([losses[s.step] for s in loss], rel=1e-5)
    evals = {e["step"]: e["loss"] for e in events if e["event"] == "eval"}
    eval_loss = acc.Scalars("eval/loss")
    assert [s.step for s in eval_loss] == [10, 20, 30]
    assert [s.value for s in eval_loss] == pytest.approx([evals[s.step] for s in eval_loss], rel=1e-5)
    lrs = {e["step"]: e["lr"] for e in _steps(events)}
    assert [s.value for s in acc.Scalars("train/learning_rate")] == pytest.approx([lrs[s] for s in range(1, 31)], rel=1e-5)


def test_adapter_names_its_base_portably_and_still_loads(overfit_run, tiny_model_dir):
    """adapter_config.json names the base as given (a hub id), not the trainer's local path; the local
    inference engine (also the VQA local backend's) still pairs it with the local base directory."""
    from vla_py.infer import engine

    assert overfit_run["rc"] == 0
    adapter = Path(overfit_run["events"][-1]["adapterDir"])
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == "someorg/tiny-vlm"
    assert json.loads((adapter / "training_config.json").read_text())["baseModel"] == str(tiny_model_dir)
    assert "base_model: someorg/tiny-vlm" in (adapter / "README.md").read_text()
    loaded = engine.load(str(tiny_model_dir), str(adapter), device="cpu", dtype="float32")
    assert loaded.adapter_base == "someorg/tiny-vlm"
    assert engine.check_adapter_base(str(tiny_model_dir), str(adapter)) == "someorg/tiny-vlm"


def test_adapter_loads_and_changes_outputs_base_untouched(overfit_run, tiny_model_dir):
    from peft import PeftModel
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    assert overfit_run["rc"] == 0
    assert _hash_dir(tiny_model_dir) == overfit_run["hash_before"]

    adapter = Path(overfit_run["events"][-1]["adapterDir"])
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    fresh = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    fresh_sd = {k: v.clone() for k, v in fresh.state_dict().items()}
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Output only the action chunk"}]}]
    prompt = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    enc = processor(text=[prompt], images=[[Image.new("RGB", (40, 32), (10, 20, 200))]], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        base_logits = base(**enc).logits
    peft_model = PeftModel.from_pretrained(base, str(adapter)).eval()
    with torch.no_grad():
        tuned_logits = peft_model(**enc).logits
    assert not torch.allclose(base_logits, tuned_logits, atol=1e-4)

    # the peft model's base weights are bit-identical to a fresh load of the base model
    base_params = {}
    for name, tensor in peft_model.state_dict().items():
        if "lora_" in name:
            continue
        key = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
        base_params[key] = tensor
    assert set(base_params) == set(fresh_sd), set(base_params) ^ set(fresh_sd)
    for k, v in fresh_sd.items():
        assert torch.equal(v, base_params[k]), k
    with peft_model.disable_adapter(), torch.no_grad():
        assert torch.equal(peft_model(**enc).logits, base_logits)


def test_sigkill_then_resume_matches_uninterrupted(tiny_model_dir, shards, tmp_path):
    common = dict(maxSteps=None, epochs=2, perDeviceBatchSize=2, checkpointEvery=2, learningRate=5e-3, validationShards=[])
    full_cfg = base_config(tiny_model_dir, shards, tmp_path / "full", **common)
    rc, full, err = run_trainer(full_cfg, tmp_path, "full.json")
    assert rc == 0, err[-3000:]
    total = full[0]["totalSteps"]
    assert total == 12 and full[-1]["event"] == "done" and full[-1]["step"] == total

    cfg = base_config(tiny_model_dir, shards, tmp_path / "killed", **common)
    proc = start_trainer(cfg, tmp_path, "killed.json")
    try:
        events = _read_until(proc, lambda e: e["event"] == "checkpoint")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    ckpt = events[-1]["dir"]
    ckpt_step = events[-1]["step"]
    assert Path(ckpt, "trainer_state.json").is_file()

    resumed_cfg = dict(cfg, resumeFrom=ckpt)
    rc, resumed, err = run_trainer(resumed_cfg, tmp_path, "resumed.json")
    assert rc == 0, err[-3000:]
    for e in resumed:
        check_event(e)
    assert resumed[0]["event"] == "start" and resumed[0]["resumedFromStep"] == ckpt_step and resumed[0]["totalSteps"] == total
    steps = _steps(resumed)
    assert [s["step"] for s in steps] == list(range(ckpt_step + 1, total + 1))
    assert resumed[-1]["event"] == "done" and resumed[-1]["step"] == total
    # same data order and RNG: the resumed run's losses are the uninterrupted run's
    full_losses = {s["step"]: s["loss"] for s in _steps(full)}
    for s in steps:
        assert s["loss"] == pytest.approx(full_losses[s["step"]], rel=1e-4, abs=1e-5), (s["step"], [(x["step"], x["loss"]) for x in _steps(full)], [(x["step"], x["loss"]) for x in steps], [(x["step"], x["loss"]) for x in _steps(events)])


def test_sigterm_stops_at_step_boundary_and_checkpoint_resumes(tiny_model_dir, shards, tmp_path):
    cfg = base_config(tiny_model_dir, shards, tmp_path / "run", maxSteps=40, epochs=10, perDeviceBatchSize=1, checkpointEvery=2, validationShards=[])
    proc = start_trainer(cfg, tmp_path, "term.json")
    try:
        events = _read_until(proc, lambda e: e["event"] == "checkpoint")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-3000:]
    events += parse_events(out)
    for e in events:
        check_event(e)
    assert events[-1]["event"] == "error" and events[-1]["code"] == "interrupted"
    assert not any(e["event"] == "done" for e in events)
    last_step = max(e["step"] for e in _steps(events))
    assert last_step < 40
    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    assert checkpoints[-1]["step"] == last_step  # the interrupted step was saved before exiting
    assert not list((tmp_path / "run" / "checkpoints").glob(".tmp-*"))

    rc, resumed, err = run_trainer(dict(cfg, resumeFrom=checkpoints[-1]["dir"]), tmp_path, "term-resume.json")
    assert rc == 0, err[-3000:]
    assert resumed[0]["resumedFromStep"] == last_step and resumed[-1]["event"] == "done" and resumed[-1]["step"] == 40


def test_action_tokens_run(tiny_model_dir, shards, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vla_py.train import action_tokens as at
    from vla_py.train.data import ShardDataset, encode_prompt

    cfg = base_config(tiny_model_dir, shards, tmp_path / "at", maxSteps=4, checkpointEvery=2, actionRepresentation="action-tokens", validationShards=[])
    rc, events, err = run_trainer(cfg, tmp_path)
    assert rc == 0, err[-3000:]
    assert events[-1]["event"] == "done" and events[-1]["step"] == 4
    adapter_map = json.loads((tmp_path / "at" / "adapter" / at.ACTION_TOKENS_FILE).read_text())
    for e in events:
        if e["event"] == "checkpoint":
            assert json.loads(Path(e["dir"], at.ACTION_TOKENS_FILE).read_text()) == adapter_map
    ids = at.digit_ids(adapter_map)
    assert len(set(ids)) == 10
    assert adapter_map["calibrationSamples"] == 12
    # reproducible: the same selection computed here from the first training samples
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    ds = ShardDataset(shards["train"])
    batches = [encode_prompt(processor, ds[i]["sample"], ds[i]["image"]) for i in range(min(32, len(ds)))]
    assert at.digit_ids(at.select_action_tokens(model, processor.tokenizer, batches)) == ids


def test_corrupt_shard_and_missing_base_model(tiny_model_dir, shards, tmp_path):
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"\x00not a tar\xff" * 333)
    cfg = base_config(tiny_model_dir, {"train": [shards["train"][0], str(garbage)], "validation": []}, tmp_path / "c")
    rc, events, err = run_trainer(cfg, tmp_path, "corrupt.json")
    assert rc == 2, err[-2000:]
    assert events[-1]["event"] == "error" and events[-1]["code"] == "corrupt_shard" and events[-1]["shard"] == str(garbage)
    check_event(events[-1])

    missing = tmp_path / "no-such-model"
    cfg = base_config(missing, shards, tmp_path / "m")
    rc, events, err = run_trainer(cfg, tmp_path, "missing.json")
    assert rc == 2, err[-2000:]
    assert events == [{"event": "error", "code": "base_model_not_found", "message": events[0]["message"]}]
    assert str(missing) in events[0]["message"]

    cfg = base_config(tiny_model_dir, shards, tmp_path / "b", precision="fp64")
    rc, events, err = run_trainer(cfg, tmp_path, "bad.json")
    assert rc == 2 and events[-1]["code"] == "bad_config" and "precision" in events[-1]["message"]


def test_reports_to_wandb_and_mlflow_only_when_asked_and_installed(tmp_path, monkeypatch, capsys):
    import importlib.util

    from vla_py.train import trainer

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    assert trainer.report_to(tmp_path / "tb") == ["tensorboard"]
    assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(tmp_path / "tb")
    line = capsys.readouterr().err
    assert "not to wandb (WANDB_API_KEY not set), mlflow (MLFLOW_TRACKING_URI not set)" in line and line.count("\n") == 1

    # Asked for, but the package is not there: said, not added (transformers would fail at start).
    monkeypatch.setenv("WANDB_API_KEY", "test-key")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "mlruns"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("wandb", "mlflow") else real_find_spec(name, *a))
    assert trainer.report_to(tmp_path / "tb") == ["tensorboard"]
    line = capsys.readouterr().err
    assert "wandb (WANDB_API_KEY is set but the wandb package is not installed)" in line and "mlflow (MLFLOW_TRACKING_URI is set but the mlflow package is not installed)" in line

    # Asked for and installed: added.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name in ("wandb", "mlflow") else real_find_spec(name, *a))
    assert trainer.report_to(tmp_path / "tb") == ["tensorboard", "wandb", "mlflow"]
    assert "not to" not in capsys.readouterr().err


def test_out_of_memory_is_named_with_advice(tmp_path, monkeypatch, capsys):
    """A CUDA OOM anywhere in the run becomes an `out_of_memory` event with advice and exit 2 (no GPU here: raised in place of the run)."""
    from vla_py.train import trainer

    def oom(_cfg):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "run", oom)
    monkeypatch.setattr(trainer, "load_config", lambda _path: object())
    monkeypatch.setattr(trainer, "redirect_stdout_to_stderr", lambda: None)
    rc = trainer.main(["--config", str(tmp_path / "unused.json")])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert rc == 2
    assert events[-1]["event"] == "error" and events[-1]["code"] == "out_of_memory"
    assert "perDeviceBatchSize" in events[-1]["message"] and "gradientAccumulationSteps" in events[-1]["message"]
