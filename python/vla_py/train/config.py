"""The trainer's config file (written by the trainLora activity, camelCase keys), parsed and validated."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import BadConfig

PRECISIONS = ("bf16", "fp16", "fp32")
ACTION_REPRESENTATIONS = ("language", "action-tokens")
DISTRIBUTED = ("ddp", "deepspeed-zero2", "fsdp")
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


@dataclass
class LoraSettings:
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: list[str] | None = None


@dataclass
class TrainConfig:
    base_model: str
    train_shards: list[str]
    output_dir: str
    validation_shards: list[str] = field(default_factory=list)
    resume_from: str | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)
    learning_rate: float = 5e-5
    warmup_steps: int = 0
    weight_decay: float = 0.0
    epochs: float = 1.0
    max_steps: int | None = None
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    precision: str = "bf16"
    max_sequence_length: int = 2048
    seed: int = 0
    checkpoint_every: int = 500
    action_representation: str = "language"
    gpus: int = 1
    distributed: str = "deepspeed-zero2"
    model_card: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def checkpoints_dir(self) -> Path:
        return Path(self.output_dir) / "checkpoints"

    @property
    def adapter_dir(self) -> Path:
        return Path(self.output_dir) / "adapter"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float))) and not isinstance(v, bool)


def parse_config(raw: Any) -> TrainConfig:
    """Validates the activity's JSON; a BadConfig names the offending field."""
    if not isinstance(raw, dict):
        raise BadConfig("config: expected a JSON object")

    def get(name: str, check, expect: str, default: Any = dataclasses.MISSING, nullable: bool = False):
        if name not in raw or (raw[name] is None and default is not dataclasses.MISSING and not nullable):
            if default is dataclasses.MISSING:
                raise BadConfig(f"config.{name}: missing (expected {expect})")
            return default
        value = raw[name]
        if value is None and nullable:
            return None
        if not check(value):
            raise BadConfig(f"config.{name}: expected {expect}, got {json.dumps(value)[:200]}")
        return value

    str_list = lambda v: isinstance(v, list) and all(isinstance(s, str) and s for s in v)  # noqa: E731
    base_model = get("baseModel", lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")
    train_shards = get("trainShards", lambda v: str_list(v) and len(v) > 0, "a non-empty list of shard paths")
    validation_shards = get("validationShards", str_list, "a list of shard paths", default=[])
    output_dir = get("outputDir", lambda v: isinstance(v, str) and v.strip() != "", "a directory path")
    resume_from = get("resumeFrom", lambda v: isinstance(v, str) and v != "", "a checkpoint directory or null", default=None, nullable=True)

    lora_raw = get("lora", lambda v: isinstance(v, dict), "an object", default={})
    lora = LoraSettings()
    if "rank" in lora_raw and lora_raw["rank"] is not None:
        if not (_is_int(lora_raw["rank"]) and 1 <= lora_raw["rank"] <= 1024):
            raise BadConfig(f"config.lora.rank: expected an integer in [1, 1024], got {lora_raw['rank']!r}")
        lora.rank = lora_raw["rank"]
    if "alpha" in lora_raw and lora_raw["alpha"] is not None:
        if not (_is_num(lora_raw["alpha"]) and lora_raw["alpha"] > 0):
            raise BadConfig(f"config.lora.alpha: expected a positive number, got {lora_raw['alpha']!r}")
        lora.alpha = float(lora_raw["alpha"])
    if "dropout" in lora_raw and lora_raw["dropout"] is not None:
        if not (_is_num(lora_raw["dropout"]) and 0 <= lora_raw["dropout"] <= 0.9):
            raise BadConfig(f"config.lora.dropout: expected a number in [0, 0.9], got {lora_raw['dropout']!r}")
        lora.dropout = float(lora_raw["dropout"])
    tm = lora_raw.get("targetModules")
    if tm is not None:
        if not (isinstance(tm, list) and tm and all(isinstance(s, str) and _MODULE_NAME.match(s) for s in tm)):
            raise BadConfig(f"config.lora.targetModules: expected null or a non-empty list of module names, got {json.dumps(tm)[:200]}")
        lora.target_modules = list(tm)

    def pos_int(v):
        return _is_int(v) and v >= 1

    cfg = TrainConfig(
        base_model=base_model,
        train_shards=list(train_shards),
        validation_shards=list(validation_shards),
        output_dir=str(Path(output_dir).absolute()),
        resume_from=str(Path(resume_from).absolute()) if resume_from else None,
        lora=lora,
        learning_rate=float(get("learningRate", lambda v: _is_num(v) and 0 < v <= 1, "a number in (0, 1]", 5e-5)),
        warmup_steps=get("warmupSteps", lambda v: _is_int(v) and v >= 0, "a non-negative integer", 0),
        weight_decay=float(get("weightDecay", lambda v: _is_num(v) and v >= 0, "a non-negative number", 0.0)),
        epochs=float(get("epochs", lambda v: _is_num(v) and 0 < v <= 100, "a number in (0, 100]", 1.0)),
        max_steps=get("maxSteps", pos_int, "a positive integer or null", None, nullable=True),
        per_device_batch_size=get("perDeviceBatchSize", pos_int, "a positive integer", 1),
        gradient_accumulation_steps=get("gradientAccumulationSteps", pos_int, "a positive integer", 1),
        precision=get("precision", lambda v: v in PRECISIONS, " | ".join(PRECISIONS), "bf16"),
        max_sequence_length=get("maxSequenceLength", lambda v: _is_int(v) and v >= 16, "an integer >= 16", 2048),
        seed=get("seed", lambda v: _is_int(v) and v >= 0, "a non-negative integer", 0),
        checkpoint_every=get("checkpointEvery", pos_int, "a positive integer", 500),
        action_representation=get("actionRepresentation", lambda v: v in ACTION_REPRESENTATIONS, " | ".join(ACTION_REPRESENTATIONS), "language"),
        gpus=get("gpus", lambda v: _is_int(v) and v >= 0, "a non-negative integer", 1),
        distributed=get("distributed", lambda v: v in DISTRIBUTED, " | ".join(DISTRIBUTED), "deepspeed-zero2"),
        model_card=get("modelCard", lambda v: isinstance(v, dict), "an object", {}),
        raw=raw,
    )
    known = {
        "baseModel", "trainShards", "validationShards", "outputDir", "resumeFrom", "lora", "learningRate",
        "warmupSteps", "weightDecay", "epochs", "maxSteps", "perDeviceBatchSize", "gradientAccumulationSteps",
        "precision", "maxSequenceLength", "seed", "checkpointEvery", "actionRepresentation", "gpus",
        "distributed", "modelCard", "progressEverySeconds",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        print(f"[vla_py.train] ignoring unknown config keys: {', '.join(unknown)}", file=sys.stderr)
    if cfg.resume_from is not None:
        rp = Path(cfg.resume_from)
        if not (rp / "trainer_state.json").is_file():
            raise BadConfig(f"config.resumeFrom: {rp} is not a checkpoint directory (no trainer_state.json)")
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadConfig(f"config file {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise BadConfig(f"config file {path} is not valid JSON: {e}") from None
    return parse_config(raw)
