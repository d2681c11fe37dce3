"""Loading a base model (+ peft adapter) and generating for a batch of requests."""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .protocol import Request


class LoadError(Exception):
    """Loading failed; ``code`` is one of protocol.ERROR_CODES."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class BadInput(Exception):
    """One request's input cannot be used (an undecodable image)."""


def log(msg: str) -> None:
    print(f"[vla_py.infer] {msg}", file=sys.stderr, flush=True)


def _looks_local(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.path.exists(name)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# Config fields whose disagreement means an adapter cannot belong to the base model.
_SHAPE_FIELDS = ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size")


def _shape_signature(config: dict | None) -> dict:
    if not config:
        return {}
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    sig = {k: text.get(k) for k in _SHAPE_FIELDS if text.get(k) is not None}
    if "model_type" in config:
        sig["model_type"] = config["model_type"]
    return sig


def check_adapter_base(base: str, adapter: str) -> str | None:
    """Compares the adapter's recorded base (adapter_config.json ``base_model_name_or_path``) with the base
    model, and with the path it was trained from (``baseModel`` of the adapter's training_config.json, which
    our trainer writes beside a portable hub id or name). Returns the recorded name. Raises
    LoadError(adapter_mismatch) only when the mismatch is certain: the recorded or trained-from base is a
    local model directory whose architecture differs from the given one. A different
    name alone is logged (the same model is often stored under different paths or hub ids)."""
    cfg = _read_json(Path(os.path.expanduser(adapter)) / "adapter_config.json")
    if cfg is None:
        raise LoadError("not_found", f"adapter {adapter} has no readable adapter_config.json (not a peft adapter directory)")
    recorded = cfg.get("base_model_name_or_path")
    if not isinstance(recorded, str) or not recorded:
        return None
    # Our trainer records a portable name there and the path it trained from in training_config.json.
    trained = _read_json(Path(os.path.expanduser(adapter)) / "training_config.json") or {}
    trained_from = trained.get("baseModel") if isinstance(trained.get("baseModel"), str) else None
    base_path = Path(os.path.expanduser(base))

    def names_base(name: str) -> bool:
        p = Path(os.path.expanduser(name))
        return name == base or (_looks_local(name) and p.exists() and base_path.exists() and p.resolve() == base_path.resolve())

    if names_base(recorded) or (trained_from is not None and names_base(trained_from)):
        return recorded
    local = next((n for n in (recorded, trained_from) if n and _looks_local(n) and (Path(os.path.expanduser(n)) / "config.json").is_file()), None)
    if local is not None:
        rec_path = Path(os.path.expanduser(local))
        a, b = _shape_signature(_read_json(rec_path / "config.json")), _shape_signature(_read_json(base_path / "config.json"))
        diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
        if a and b and diff:
            detail = ", ".join(f"{k} {x} vs {y}" for k, (x, y) in sorted(diff.items()))
            raise LoadError(
                "adapter_mismatch",
                f"adapter {adapter} was trained on base model {recorded if local == recorded else f'{recorded} ({local})'}, not on {base} ({detail})",
            )
    log(f"adapter {adapter} names base model {recorded!r}, not {base!r}; loading it anyway (its weights must fit)")
    return recorded


@dataclass
class Loaded:
    model: Any
    processor: Any
    device: str
    dtype: str
    adapter_base: str | None
    #: The adapter's action_tokens.json (VLM2VLA-AT adapters), else None.
    action_mapping: dict | None = None


def load(base: str, adapter: str | None = None, device: str | None = None, dtype: str | None = None) -> Loaded:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if _looks_local(base):
        p = Path(os.path.expanduser(base))
        if not p.is_dir():
            raise LoadError("not_found", f"base model directory {base} does not exist")
        if not (p / "config.json").is_file():
            raise LoadError("not_found", f"base model directory {base} has no config.json (not a transformers model directory)")
    adapter_base = None
    if adapter is not None:
        ap = Path(os.path.expanduser(adapter))
        if not ap.is_dir():
            raise LoadError("not_found", f"adapter directory {adapter} does not exist")
        adapter_base = check_adapter_base(base, adapter)

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None or dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    torch_dtype = getattr(torch, dtype)
    try:
        processor = AutoProcessor.from_pretrained(base)
        model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch_dtype)
    except OSError as e:
        raise LoadError("not_found", f"cannot load base model {base}: {e}") from None
    except ValueError as e:
        raise LoadError("bad_request", f"base model {base} is not an image-text-to-text model: {e}") from None
    if adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter)
        except RuntimeError as e:
            if "size mismatch" in str(e) or "shape" in str(e):
                first = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e).splitlines()[0])
                raise LoadError(
                    "adapter_mismatch",
                    f"adapter {adapter} (trained on {adapter_base or 'an unnamed base'}) does not fit base model {base}: {first}",
                ) from None
            raise
        except ValueError as e:
            # peft: "Target modules {...} not found in the base model".
            if "not found in the base model" in str(e) or "Target module" in str(e):
                raise LoadError(
                    "adapter_mismatch",
                    f"adapter {adapter} (trained on {adapter_base or 'an unnamed base'}) does not fit base model {base}: {e}",
                ) from None
            raise
    model.to(device).eval()
    tok = getattr(processor, "tokenizer", processor)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    action_mapping = None
    if adapter is not None:
        from ..train.action_tokens import load_mapping

        try:
            action_mapping = load_mapping(os.path.expanduser(adapter))
        except ValueError as e:
            raise LoadError("adapter_mismatch", f"adapter {adapter}: its action_tokens.json is not valid JSON: {e}") from None
    return Loaded(model, processor, device, dtype, adapter_base, action_mapping)


def decode_images(req: Request) -> list:
    from PIL import Image, UnidentifiedImageError

    out = []
    for n, data in enumerate(req.images):
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
            out.append(img.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise BadInput(f"image {n} is not a readable image: {e}") from None
    return out


def _stop_ids(loaded: Loaded) -> set[int]:
    eos = loaded.model.generation_config.eos_token_id
    tok = getattr(loaded.processor, "tokenizer", loaded.processor)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tok.eos_token_id is not None:
        ids.add(tok.eos_token_id)
    return ids


def generate_batch(loaded: Loaded, batch: list[Request]) -> list[dict]:
    """One left-padded generate call for requests that share sampling settings (Request.sampling_key);
    ``payload`` holds each request's decoded images. Returns answers in the batch's order."""
    import torch

    processor, model = loaded.processor, loaded.model
    tok = getattr(processor, "tokenizer", processor)
    texts = []
    for r in batch:
        content = [{"type": "image"} for _ in r.payload] + [{"type": "text", "text": r.prompt}]
        texts.append(processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False))
    kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt", "add_special_tokens": False}
    if batch[0].payload:
        kwargs["images"] = [r.payload for r in batch]
    enc = processor(**kwargs).to(loaded.device)
    if "pixel_values" in enc:
        enc["pixel_values"] = enc["pixel_values"].to(model.dtype)

    first = batch[0]
    max_new = max(r.max_new_tokens for r in batch)
    gen: dict[str, Any] = {"max_new_tokens": max_new, "return_dict_in_generate": True, "pad_token_id": tok.pad_token_id}
    if first.temperature == 0:
        gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        gen.update(do_sample=True, temperature=first.temperature, top_p=first.top_p if first.top_p is not None else 1.0, top_k=None)
    want_logprobs = any(r.logprobs for r in batch)
    if want_logprobs:
        gen["output_logits"] = True
    with torch.inference_mode():
        out = model.generate(**enc, **gen)
    prompt_len = enc["input_ids"].shape[1]
    sequences = out.sequences[:, prompt_len:].tolist()
    stops = _stop_ids(loaded)
    input_tokens = enc["attention_mask"].sum(dim=1).tolist()
    answers = []
    for i, r in enumerate(batch):
        ids = sequences[i][: r.max_new_tokens]
        stop_at = next((j for j, t in enumerate(ids) if t in stops), None)
        n = len(ids) if stop_at is None else stop_at + 1
        kept = ids[:n]
        text_ids = [t for t in kept if t not in stops]
        if r.action_tokens:
            # By ids, not by text: two mapped tokens' texts can read as a third's.
            from ..train.action_tokens import decode_action_ids

            text = decode_action_ids(tok, text_ids, loaded.action_mapping, skip_special_tokens=True)
        else:
            text = tok.decode(text_ids, skip_special_tokens=True)
        answer: dict[str, Any] = {
            "id": r.id,
            "text": text,
            "inputTokens": int(input_tokens[i]),
            "outputTokens": len(kept),
            "batchSize": len(batch),
            # No end-of-sequence within the request's own limit: the answer was cut off there.
            "truncated": stop_at is None and len(ids) >= r.max_new_tokens,
        }
        if r.logprobs:
            lp = []
            for j, t in enumerate(kept):
                step = torch.log_softmax(out.logits[j][i].float(), dim=-1)
                lp.append(round(float(step[t]), 6))
            answer["logprobs"] = lp
        answers.append(answer)
    return answers
