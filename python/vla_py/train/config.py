"""The trainer's config file, written by the trainLora activity: validated against
``vla_py/schemas/trainer-config.schema.json`` (TrainerConfig in data-schemas/python-border.ts), which
requires every field. The activity fills each one; nothing is defaulted or re-checked here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..border import BorderError, validate
from .events import BadConfig


@dataclass(frozen=True)
class LoraSettings:
    rank: int
    alpha: float
    dropout: float
    #: None: every linear layer of the language model.
    target_modules: list[str] | None


@dataclass(frozen=True)
class TrainConfig:
    base_model: str
    #: What adapter_config.json names as the base: a hub id or the name the user gave, never only this machine's path.
    base_model_name: str
    train_shards: list[str]
    validation_shards: list[str]
    output_dir: str
    resume_from: str | None
    lora: LoraSettings
    learning_rate: float
    warmup_steps: int
    weight_decay: float
    epochs: float
    max_steps: int | None
    per_device_batch_size: int
    gradient_accumulation_steps: int
    precision: str
    max_sequence_length: int
    seed: int
    checkpoint_every: int
    #: Optimizer steps between evaluation losses on the validation shards.
    eval_every: int
    action_representation: str
    gpus: int
    distributed: str
    model_card: dict[str, str]
    #: The file as read: copied beside the adapter as training_config.json.
    raw: dict[str, Any]

    @property
    def checkpoints_dir(self) -> Path:
        return Path(self.output_dir) / "checkpoints"

    @property
    def adapter_dir(self) -> Path:
        return Path(self.output_dir) / "adapter"

    @property
    def tensorboard_dir(self) -> Path:
        # The activity uploads this folder as <outputUri>/tensorboard (TENSORBOARD_DIR, data-schemas/training.ts).
        return Path(self.output_dir) / "tensorboard"


def parse_config(raw: Any) -> TrainConfig:
    """The validated config; a BadConfig names the offending field (``config.lora.rank ...``)."""
    try:
        validate("trainer-config", raw, root="config")
    except BorderError as e:
        raise BadConfig(str(e)) from None
    lora = raw["lora"]
    cfg = TrainConfig(
        base_model=raw["baseModel"],
        base_model_name=raw["baseModelName"],
        train_shards=list(raw["trainShards"]),
        validation_shards=list(raw["validationShards"]),
        output_dir=str(Path(raw["outputDir"]).absolute()),
        resume_from=str(Path(raw["resumeFrom"]).absolute()) if raw["resumeFrom"] is not None else None,
        lora=LoraSettings(rank=lora["rank"], alpha=float(lora["alpha"]), dropout=float(lora["dropout"]), target_modules=lora["targetModules"]),
        learning_rate=float(raw["learningRate"]),
        warmup_steps=raw["warmupSteps"],
        weight_decay=float(raw["weightDecay"]),
        epochs=float(raw["epochs"]),
        max_steps=raw["maxSteps"],
        per_device_batch_size=raw["perDeviceBatchSize"],
        gradient_accumulation_steps=raw["gradientAccumulationSteps"],
        precision=raw["precision"],
        max_sequence_length=raw["maxSequenceLength"],
        seed=raw["seed"],
        checkpoint_every=raw["checkpointEvery"],
        eval_every=raw["evalEvery"],
        action_representation=raw["actionRepresentation"],
        gpus=raw["gpus"],
        distributed=raw["distributed"],
        model_card=dict(raw["modelCard"]),
        raw=raw,
    )
    # Not a shape rule: whether the directory on this machine is a checkpoint.
    if cfg.resume_from is not None and not (Path(cfg.resume_from) / "trainer_state.json").is_file():
        raise BadConfig(f"config.resumeFrom: {cfg.resume_from} is not a checkpoint directory (no trainer_state.json)")
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadConfig(f"config file {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise BadConfig(f"config file {path} is not valid JSON: {e}") from None
    try:
        return parse_config(raw)
    except BadConfig as e:
        raise BadConfig(f"config file {path}: {e.message}") from None
