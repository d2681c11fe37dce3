"""Fixtures: the tiny offline model (built once per session) and ShardSample tar shards."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PYTHON_ROOT = Path(__file__).resolve().parent.parent

SUBTASKS_PROMPT = (
    'The robot\'s task is: "{instruction}".\n'
    "Looking at the image, list every high-level subtask the robot must do, in order, one per line,\n"
    'numbered "1.", "2.", ... The first subtask starts with "Move to".'
)
MOTION_PROMPT = (
    'Current subtask: "{subtask}".\n'
    "Describe briefly how the gripper must move to do it. Axes: +x forward (away from the robot base),\n"
    "+y left, +z up; say whether the gripper should be open or closed."
)
ACTION_PROMPT = (
    'Current subtask: "{subtask}".\n'
    "Motion plan: {plan}\n"
    "Output only the action chunk: a list of [dx, dy, dz, gripper] with dx, dy, dz in metres\n"
    "(+x forward, +y left, +z up) and gripper 1 for open, 0 for closed."
)


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (40, 32)) -> bytes:
    from PIL import Image

    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 4):
        img.putpixel((x, x % size[1]), (255 - color[0], 255 - color[1], 255 - color[2]))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_sample(i: int, stage: str) -> dict:
    traj = f"traj-{i // 3:03d}"
    if stage == "subtasks":
        user = SUBTASKS_PROMPT.format(instruction="put the red block in the bowl")
        answer = "1. Move to the red block\n2. Grasp the red block\n3. Move to the bowl\n4. Release the block"
    elif stage == "motion_plan":
        user = MOTION_PROMPT.format(subtask="Move to the red block")
        answer = "Move the gripper forward and down, keep it open."
    else:
        user = ACTION_PROMPT.format(subtask="Move to the red block", plan="Move the gripper forward and down, keep it open.")
        answer = f"[[0.0{i % 10}2, -0.003, 0.000, 1], [0.020, 0.000, -0.01{(i * 7) % 10}, 0]]"
    return {
        "key": f"{traj}_{stage}_{i:04d}",
        "trajectoryId": traj,
        "stage": stage,
        "step": 0 if stage == "subtasks" else i % 5,
        "image": "png",
        "messages": [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user}]},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
        ],
    }


def write_shard(path: Path, samples: list[dict], colors: list[tuple[int, int, int]] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for j, s in enumerate(samples):
            color = (colors[j] if colors else ((37 * j) % 256, (91 * j) % 256, (53 * j + 120) % 256))
            for name, data in ((f"{s['key']}.json", json.dumps(s).encode()), (f"{s['key']}.{s['image']}", png_bytes(color))):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 0
                tar.addfile(info, io.BytesIO(data))
    return path


def make_samples(n: int, start: int = 0) -> list[dict]:
    stages = ("subtasks", "motion_plan", "action")
    return [make_sample(i, stages[i % 3]) for i in range(start, start + n)]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from vla_py.tiny_model import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture()
def shards(tmp_path) -> dict[str, list[str]]:
    train = [
        str(write_shard(tmp_path / "shards" / "train" / "shard-000000.tar", make_samples(6, 0))),
        str(write_shard(tmp_path / "shards" / "train" / "shard-000001.tar", make_samples(6, 6))),
    ]
    val = [str(write_shard(tmp_path / "shards" / "validation" / "shard-000000.tar", make_samples(3, 100)))]
    return {"train": train, "validation": val}


def base_config(model_dir: Path, shards: dict, out: Path, **overrides) -> dict:
    cfg = {
        "baseModel": str(model_dir),
        "baseModelName": "someorg/tiny-vlm",
        "trainShards": shards["train"],
        "validationShards": shards.get("validation", []),
        "outputDir": str(out),
        "resumeFrom": None,
        "lora": {"rank": 8, "alpha": 16, "dropout": 0.0, "targetModules": None},
        "learningRate": 1e-3,
        "warmupSteps": 0,
        "weightDecay": 0,
        "epochs": 1,
        "maxSteps": 6,
        "perDeviceBatchSize": 2,
        "gradientAccumulationSteps": 1,
        "precision": "fp32",
        "maxSequenceLength": 512,
        "seed": 0,
        "checkpointEvery": 3,
        "evalEvery": 3,
        "actionRepresentation": "language",
        "gpus": 0,
        "distributed": "ddp",
        "modelCard": {"runUri": "file:///tmp/run", "shardsUri": "file:///tmp/shards.json", "gitRevision": "abc123", "baseModel": "tiny"},
    }
    cfg.update(overrides)
    return cfg


def trainer_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PYTHON_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["HF_HUB_OFFLINE"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""
    # A test trainer never reports to a real W&B or MLflow of whoever runs the tests.
    env.pop("WANDB_API_KEY", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def write_config(cfg: dict, path: Path) -> Path:
    path.write_text(json.dumps(cfg))
    return path


def run_trainer(cfg: dict, tmp: Path, name: str = "config.json", timeout: float = 170) -> tuple[int, list[dict], str]:
    p = write_config(cfg, tmp / name)
    proc = subprocess.run(
        [sys.executable, "-m", "vla_py.train", "--config", str(p)],
        capture_output=True, text=True, env=trainer_env(), cwd=str(PYTHON_ROOT), timeout=timeout,
    )
    events = parse_events(proc.stdout)
    return proc.returncode, events, proc.stderr


def parse_events(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))  # every stdout line must be one JSON event
    return out


def start_trainer(cfg: dict, tmp: Path, name: str = "config.json") -> subprocess.Popen:
    p = write_config(cfg, tmp / name)
    return subprocess.Popen(
        [sys.executable, "-m", "vla_py.train", "--config", str(p)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=trainer_env(), cwd=str(PYTHON_ROOT),
    )


def check_event(e: dict) -> None:
    """A trainer event matches TrainerEvent (vla_py/schemas/trainer-event.schema.json), what trainLora parses."""
    from vla_py.border import validate

    validate("trainer-event", e, root="event")
