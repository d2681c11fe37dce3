"""LoRA fine-tuning of a vision-language model on WebDataset shards, with JSON-line events on stdout.

    python -m vla_py.train --config CONFIG.json

transformers ``Trainer`` does the loop (checkpoints, exact resume with batch skipping, bf16, DDP /
DeepSpeed / FSDP under ``accelerate launch``); this module adds the data, the LoRA setup, the event
stream, atomic checkpoints, SIGTERM handling and the VLM2VLA-AT action-token mapping.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

from ..parent_watch import watch_parent
from .config import TrainConfig, load_config
from .events import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    BadConfig,
    Interrupted,
    TrainerError,
    emit,
    emit_error,
    is_main_process,
    redirect_stdout_to_stderr,
)

OOM_ADVICE = "lower perDeviceBatchSize (raising gradientAccumulationSteps to keep the global batch), or lower maxSequenceLength"


class _Signals:
    phase = "setup"  # setup -> training -> finishing
    stop_requested = False


def _on_sigterm(signum, frame):  # noqa: ARG001
    _Signals.stop_requested = True
    if _Signals.phase == "setup":
        raise Interrupted("SIGTERM before training started")


def _watch_parent() -> None:
    """Stops the trainer like a SIGTERM once the worker that started it (VLA_PARENT_PID) is gone.

    The trainer runs in its own process group, so a SIGKILLed worker would otherwise leave it
    training alone while the retried attempt starts another on the same files.
    """

    def gone(parent: int) -> None:
        log(f"the worker process {parent} is gone: stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    watch_parent(gone)


def log(msg: str) -> None:
    print(f"[vla_py.train] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Model helpers


def check_base_model(base: str) -> None:
    looks_local = base.startswith(("/", "./", "../", "~")) or os.path.exists(base)
    if looks_local:
        p = Path(os.path.expanduser(base))
        if not p.is_dir():
            raise TrainerError("base_model_not_found", f"base model {base}: no such directory")
        if not (p / "config.json").is_file():
            raise TrainerError("base_model_not_found", f"base model {base}: not a model directory (no config.json)")


def language_model_prefix(model) -> str:
    names = [n for n, _ in model.named_modules() if n.split(".")[-1] == "language_model"]
    if names:
        return min(names, key=len)
    get_decoder = getattr(model, "get_decoder", None)
    if get_decoder is not None:
        dec = get_decoder()
        for n, m in model.named_modules():
            if m is dec and n:
                return n
    raise BadConfig("cannot find the language model inside the base model (no `language_model` module)")


def language_model_linear_names(model, suffixes: list[str] | None = None) -> list[str]:
    """Full names of the nn.Linear modules inside the language model (optionally those ending in one of
    ``suffixes``); never the vision tower, the projector or lm_head."""
    import torch.nn as nn

    prefix = language_model_prefix(model)
    out = []
    for name, mod in model.named_modules():
        if not name.startswith(prefix + ".") or not isinstance(mod, nn.Linear):
            continue
        if suffixes and not any(name == f"{prefix}.{s}" or name.endswith("." + s) for s in suffixes):
            continue
        out.append(name)
    if not out:
        what = f"targetModules {suffixes}" if suffixes else "the default target modules"
        field = "config.lora.targetModules" if suffixes else "config.baseModel"
        raise BadConfig(f"{field}: {what} match no linear layer of the language model ({prefix})")
    return out


def _leaf_names(names: list[str]) -> list[str]:
    return sorted({n.split(".")[-1] for n in names})


# ---------------------------------------------------------------------------------------------
# Trainer with atomic checkpoints and events


def _make_trainer_class():
    from transformers import Trainer

    class VlaTrainer(Trainer):
        extra_checkpoint_files: dict[str, str] = {}

        def _save_checkpoint(self, model, trial):  # noqa: D401
            """Writes the checkpoint under a staging name, then renames it into place (SIGKILL-safe)."""
            import torch.distributed as dist

            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            step = self.state.global_step
            final_root = self.args.output_dir
            staging_root = os.path.join(final_root, f".tmp-{PREFIX_CHECKPOINT_DIR}-{step}")
            name = f"{PREFIX_CHECKPOINT_DIR}-{step}"
            if self.args.should_save:
                shutil.rmtree(staging_root, ignore_errors=True)
                os.makedirs(staging_root, exist_ok=True)
            if dist.is_available() and dist.is_initialized():
                dist.barrier()
            self.args.output_dir = staging_root
            try:
                super()._save_checkpoint(model, trial)
            finally:
                self.args.output_dir = final_root
            if dist.is_available() and dist.is_initialized():
                dist.barrier()
            final = os.path.join(final_root, name)
            if self.args.should_save:
                staged = os.path.join(staging_root, name)
                for fname, content in self.extra_checkpoint_files.items():
                    Path(staged, fname).write_text(content)
                _fsync_tree(staged)
                if os.path.exists(final):
                    old = os.path.join(final_root, f".old-{name}")
                    shutil.rmtree(old, ignore_errors=True)
                    os.rename(final, old)
                    os.rename(staged, final)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.rename(staged, final)
                shutil.rmtree(staging_root, ignore_errors=True)
            if dist.is_available() and dist.is_initialized():
                dist.barrier()
            emit("checkpoint", step=step, dir=os.path.abspath(final))

    return VlaTrainer


def _fsync_tree(path: str) -> None:
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                fd = os.open(os.path.join(root, f), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass


def _make_events_callback(trainable: int, total: int, samples: int):
    import torch
    from transformers import TrainerCallback

    class EventsCallback(TrainerCallback):
        def __init__(self):
            self.window: deque[tuple[float, int, int]] = deque(maxlen=21)
            self.begin_step = 0
            self.begin_tokens = 0
            self.last_loss: float | None = None
            #: (step, loss) of the last evaluation on the validation shards.
            self.last_eval: tuple[int, float] | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            _Signals.phase = "training"
            self.begin_step = state.global_step
            self.begin_tokens = int(state.num_input_tokens_seen or 0)
            self.window.append((time.monotonic(), state.global_step, self.begin_tokens))
            emit(
                "start",
                totalSteps=int(state.max_steps),
                resumedFromStep=int(state.global_step),
                trainableParameters=trainable,
                totalParameters=total,
                samples=samples,
            )

        def on_step_begin(self, args, state, control, **kwargs):
            # single process: never start a new step after SIGTERM (multi-process runs agree in on_step_end)
            if _Signals.stop_requested and int(os.environ.get("WORLD_SIZE", "1")) == 1:
                raise Interrupted(f"SIGTERM before step {state.global_step + 1}")

        def on_step_end(self, args, state, control, **kwargs):
            if _sync_any(_Signals.stop_requested):
                _Signals.stop_requested = True
                control.should_training_stop = True
                control.should_save = True  # keep the progress: the checkpoint is written before stopping
            return control

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_loss" in metrics:
                self.last_eval = (int(state.global_step), float(metrics["eval_loss"]))
                emit("eval", step=self.last_eval[0], loss=self.last_eval[1])

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs or "train_loss" in logs:
                return
            now = time.monotonic()
            tokens = int(state.num_input_tokens_seen or 0)
            self.window.append((now, state.global_step, tokens))
            t0, s0, k0 = self.window[0]
            dt = max(now - t0, 1e-9)
            steps = max(state.global_step - s0, 1)
            self.last_loss = float(logs["loss"])
            emit(
                "step",
                step=int(state.global_step),
                totalSteps=int(state.max_steps),
                epoch=float(state.epoch or 0.0),
                loss=float(logs["loss"]),
                lr=float(logs.get("learning_rate", 0.0)),
                tokensPerSecond=round((tokens - k0) / dt, 3),
                etaSeconds=round(max(state.max_steps - state.global_step, 0) * dt / steps, 3),
            )

    def _sync_any(flag: bool) -> bool:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return flag
        dev = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
        t = torch.tensor([1 if flag else 0], device=dev)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    return EventsCallback()


# ---------------------------------------------------------------------------------------------
# The run


def _deepspeed_zero2() -> dict[str, Any]:
    return {
        "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True, "allgather_bucket_size": 2e8, "reduce_bucket_size": 2e8},
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
    }


def report_to(tensorboard_dir: Path) -> list[str]:
    """TensorBoard always (event files under ``tensorboard_dir``); W&B and MLflow when their
    environment asks for them and their package is installed. Says once what was left out and why."""
    import importlib.util

    # transformers' TensorBoardCallback takes its folder from here (else a dated one under output_dir).
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(tensorboard_dir)
    targets = ["tensorboard"]
    skipped = []
    for name, package, variable in (("wandb", "wandb", "WANDB_API_KEY"), ("mlflow", "mlflow", "MLFLOW_TRACKING_URI")):
        if not os.environ.get(variable):
            skipped.append(f"{name} ({variable} not set)")
        elif importlib.util.find_spec(package) is None:
            skipped.append(f"{name} ({variable} is set but the {package} package is not installed)")
        else:
            targets.append(name)
    log(f"reporting to {', '.join(targets)} (TensorBoard event files in {tensorboard_dir})" + (f"; not to {', '.join(skipped)}" if skipped else ""))
    return targets


def model_card(cfg: TrainConfig, targets: list[str], steps: int, final_loss: float | None, metrics: dict[str, float], mapping: dict | None) -> str:
    card = cfg.model_card or {}
    base = cfg.base_model_name
    lines = [
        "---",
        f"base_model: {base}",
        "library_name: peft",
        "tags: [lora, vla, vlm2vla]",
        "---",
        "",
        "# VLM2VLA LoRA adapter",
        "",
        f"- Base model: `{base}`",
        "- Method: LoRA (peft) on the language model's linear layers; base weights frozen; cross-entropy on the assistant text of all three stages (subtasks, motion plan, action)",
        f"- LoRA: rank {cfg.lora.rank}, alpha {cfg.lora.alpha:g}, dropout {cfg.lora.dropout:g}, target modules {', '.join(_leaf_names(targets))} ({len(targets)} modules)",
        f"- Action representation: `{cfg.action_representation}`"
        + (" (digits 0-9 as the base model's 10 least-likely tokens, see action_tokens.json)" if mapping else ""),
        f"- Data shards: {card.get('shardsUri') or ', '.join(cfg.train_shards[:3]) + (' ...' if len(cfg.train_shards) > 3 else '')}",
        f"- Training: {steps} optimizer steps, lr {cfg.learning_rate:g} (linear decay, {cfg.warmup_steps} warmup), batch {cfg.per_device_batch_size} x accumulation {cfg.gradient_accumulation_steps} per device, precision {cfg.precision}, seed {cfg.seed}",
        f"- Final training loss: {final_loss:.4f}" if final_loss is not None else "- Final training loss: n/a",
    ]
    if "eval_loss" in metrics:
        lines.append(f"- Validation loss: {metrics['eval_loss']:.4f}")
    if card.get("runUri"):
        lines.append(f"- Run: {card['runUri']}")
    lines.append(f"- Git revision: {card.get('gitRevision', 'unknown')}")
    lines += ["", "Load with `PeftModel.from_pretrained(base_model, <this directory>)`; `training_config.json` is the exact config.", ""]
    return "\n".join(lines)


def run(cfg: TrainConfig) -> int:
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText, AutoProcessor, TrainingArguments

    from . import action_tokens as at
    from .data import Collator, ShardDataset, encode_prompt

    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    cuda = torch.cuda.is_available()
    precision = cfg.precision
    if not cuda and precision != "fp32":
        log(f"no CUDA device: precision {precision} -> fp32 on CPU")
        precision = "fp32"
    elif cuda and precision == "bf16" and not torch.cuda.is_bf16_supported():
        log("this GPU has no bf16: precision bf16 -> fp16")
        precision = "fp16"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    world_size = int(os.environ.get("WORLD_SIZE", "1"))

    if is_main_process() and cfg.checkpoints_dir.is_dir():
        for p in cfg.checkpoints_dir.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
        for p in cfg.checkpoints_dir.glob(".old-*"):
            shutil.rmtree(p, ignore_errors=True)

    train_ds = ShardDataset(cfg.train_shards)
    val_ds = ShardDataset(cfg.validation_shards) if cfg.validation_shards else None
    log(f"{len(train_ds)} training samples in {len(cfg.train_shards)} shards" + (f", {len(val_ds)} validation samples" if val_ds else ""))
    if val_ds is None:
        log("the shard set has no validation split: training without evaluation")

    check_base_model(cfg.base_model)
    try:
        processor = AutoProcessor.from_pretrained(cfg.base_model)
        model = AutoModelForImageTextToText.from_pretrained(cfg.base_model, dtype=dtype)
    except (OSError, ValueError, KeyError) as e:
        raise TrainerError("base_model_not_found", f"base model {cfg.base_model} could not be loaded: {e}") from None
    tokenizer = getattr(processor, "tokenizer", processor)

    ds_config = _deepspeed_zero2() if (world_size > 1 and cfg.distributed == "deepspeed-zero2") else None
    args = TrainingArguments(
        output_dir=str(cfg.checkpoints_dir),
        per_device_train_batch_size=cfg.per_device_batch_size,
        per_device_eval_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        optim="adamw_torch",
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps is not None else -1,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        logging_strategy="steps",
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.checkpoint_every,
        save_total_limit=None,
        eval_strategy="steps" if val_ds is not None else "no",
        eval_steps=cfg.eval_every,
        # the loss is all an evaluation needs: no vocabulary-sized logits gathered
        prediction_loss_only=True,
        report_to=report_to(cfg.tensorboard_dir) if is_main_process() else "none",
        disable_tqdm=True,
        remove_unused_columns=False,
        label_names=["labels"],
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        use_cpu=not cuda,
        activation_checkpointing=cuda,
        activation_checkpointing_kwargs={"use_reentrant": False} if cuda else None,
        ddp_find_unused_parameters=False,
        deepspeed=ds_config,
        log_level="warning",
        log_level_replica="error",
    )

    mapping = None
    if cfg.action_representation == "action-tokens":
        if cfg.resume_from:
            mapping = at.load_mapping(cfg.resume_from)
            if mapping is not None:
                log(f"action tokens: mapping from {cfg.resume_from}/{at.ACTION_TOKENS_FILE}")
        if mapping is None:
            device = args.device
            model.to(device)
            n = min(at.CALIBRATION_SAMPLES, len(train_ds))
            batches = []
            for i in range(n):
                item = train_ds[i]
                batches.append(encode_prompt(processor, item["sample"], item["image"]))
            mapping = at.select_action_tokens(model, tokenizer, batches, device=device)
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                obj = [mapping]
                dist.broadcast_object_list(obj, src=0)
                mapping = obj[0]
            log("action tokens: " + ", ".join(f"{d}->{v['id']}({v['token']!r})" for d, v in mapping["digits"].items()))

    transformers.set_seed(cfg.seed)  # the LoRA A matrices are drawn here: same seed, same adapter init
    targets = language_model_linear_names(model, cfg.lora.target_modules)
    log(f"LoRA on {len(targets)} modules: {', '.join(_leaf_names(targets))}")
    lora_config = LoraConfig(
        r=cfg.lora.rank,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora_config)
    # adapter_config.json names the base portably (a hub id, the name given); training_config.json keeps the local path
    model.peft_config["default"].base_model_name_or_path = cfg.base_model_name
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    VlaTrainer = _make_trainer_class()
    VlaTrainer.extra_checkpoint_files = {at.ACTION_TOKENS_FILE: json.dumps(mapping, indent=2, ensure_ascii=False) + "\n"} if mapping else {}
    events = _make_events_callback(trainable, total, len(train_ds))
    trainer = VlaTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=Collator(processor, cfg.max_sequence_length, mapping),
        callbacks=[events],
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)

    result = trainer.train(resume_from_checkpoint=cfg.resume_from)
    if _Signals.stop_requested and trainer.state.global_step < trainer.state.max_steps:
        raise Interrupted(f"SIGTERM: stopped after step {trainer.state.global_step}")
    _Signals.phase = "finishing"

    step = int(trainer.state.global_step)
    runtime = float(result.metrics.get("train_runtime", 0.0))
    tokens = int(trainer.state.num_input_tokens_seen or 0) - events.begin_tokens
    metrics: dict[str, float] = {
        "train_loss": float(result.training_loss),
        "train_runtime": runtime,
        "train_tokens_per_second": tokens / runtime if runtime > 0 else 0.0,
    }
    if val_ds is not None:
        # the last step is always evaluated; on_evaluate emits the event
        if events.last_eval is None or events.last_eval[0] != step:
            trainer.evaluate(eval_dataset=val_ds)
        if events.last_eval is not None:
            metrics["eval_loss"] = events.last_eval[1]

    adapter = cfg.adapter_dir
    staging = adapter.with_name(adapter.name + ".tmp")
    if is_main_process():
        shutil.rmtree(staging, ignore_errors=True)
    trainer.save_model(str(staging))
    if is_main_process():
        if mapping:
            at.save_mapping(mapping, staging)
        (staging / "training_config.json").write_text(json.dumps(cfg.raw, indent=2) + "\n")
        (staging / "README.md").write_text(model_card(cfg, targets, step, events.last_loss, metrics, mapping))
        try:
            (staging / "training_args.bin").unlink()
        except FileNotFoundError:
            pass
        _fsync_tree(str(staging))
        if adapter.exists():
            shutil.rmtree(adapter)
        os.rename(staging, adapter)
    emit("done", step=step, adapterDir=str(adapter), metrics=metrics)
    return 0


def _is_oom(e: BaseException) -> bool:
    try:
        import torch

        if isinstance(e, torch.cuda.OutOfMemoryError):
            return True
    except Exception:  # noqa: BLE001
        pass
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e).lower())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vla_py.train", description="LoRA fine-tuning; JSON-line events on stdout")
    parser.add_argument("--config", required=True, help="the config JSON written by the trainLora activity")
    ns = parser.parse_args(argv)
    redirect_stdout_to_stderr()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    signal.signal(signal.SIGTERM, _on_sigterm)
    _watch_parent()
    try:
        cfg = load_config(ns.config)
        return run(cfg)
    except Interrupted as e:
        emit_error("interrupted", str(e))
        return EXIT_INTERRUPTED
    except TrainerError as e:
        emit_error(e.code, e.message, e.shard)
        return EXIT_ERROR
    except BaseException as e:  # noqa: BLE001
        if _is_oom(e):
            emit_error("out_of_memory", f"out of memory ({type(e).__name__}: {str(e)[:300]}); {OOM_ADVICE}")
            return EXIT_ERROR
        if isinstance(e, KeyboardInterrupt):
            emit_error("interrupted", "interrupted (SIGINT)")
            return EXIT_INTERRUPTED
        traceback.print_exc()
        return 1
