"""VLM2VLA-AT ablation: the digits 0-9 of action chunks written as the base model's ten least-likely tokens.

Selection (reproducible): the base model, in eval mode without gradients, reads a calibration set (the
prompts, image included, of the first up-to-32 training samples in shard order); its log-softmax is
averaged over every non-padding position of every prompt. Excluded: special and added tokens, ids the
tokenizer does not have, tokens whose text contains a digit or is only whitespace or only the
characters of an action chunk (``[ ] , . - +`` and spaces, which the non-digit runs of a chunk encode
to), and tokens whose decode -> encode does not give back the same single id. The ten lowest, in
ascending order of mean log-probability (ties: lower id first), become the digits 0..9.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

import torch

ACTION_TOKENS_FILE = "action_tokens.json"
METHOD = "least-likely-v1"
CALIBRATION_SAMPLES = 32
_CHUNK_CHARS = set("[](),.-+ \t\r\n")
_DIGIT_SPLIT = re.compile(r"(\d)")


def _excluded_ids(tokenizer) -> set[int]:
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    ids.update(int(i) for i in added)
    return ids


def acceptable_token(tokenizer, token_id: int, excluded: set[int]) -> bool:
    if token_id in excluded or token_id >= len(tokenizer):
        return False
    text = tokenizer.decode([token_id])
    if not text or text.strip() == "" or any(c.isdigit() for c in text) or set(text) <= _CHUNK_CHARS:
        return False
    if "\ufffd" in text:
        return False
    return list(tokenizer.encode(text, add_special_tokens=False)) == [token_id]


def pick_least_likely(tokenizer, mean_log_probs: torch.Tensor, k: int = 10) -> list[int]:
    excluded = _excluded_ids(tokenizer)
    scores = mean_log_probs.double().cpu()
    ids = torch.arange(scores.shape[0])
    # ascending score, ties broken by id: stable sort on the score of id-ordered entries
    order = ids[torch.argsort(scores, stable=True)].tolist()
    chosen: list[int] = []
    for i in order:
        if acceptable_token(tokenizer, i, excluded):
            chosen.append(i)
            if len(chosen) == k:
                break
    if len(chosen) < k:
        raise ValueError(f"only {len(chosen)} usable tokens for the action-token mapping")
    return chosen


@torch.no_grad()
def mean_log_softmax(model, batches: Iterable[dict[str, torch.Tensor]], device=None) -> tuple[torch.Tensor, int]:
    """Mean over all non-padding positions of all batches of the model's log-softmax; and the count."""
    was_training = model.training
    model.eval()
    total = None
    count = 0
    device = device or next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    try:
        for batch in batches:
            inputs = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
                inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
            inputs.pop("labels", None)
            logits = model(**inputs).logits.float()
            lp = torch.log_softmax(logits, dim=-1)
            mask = inputs.get("attention_mask")
            if mask is None:
                mask = torch.ones(lp.shape[:2], device=lp.device)
            s = (lp * mask[..., None].to(lp.dtype)).sum(dim=(0, 1))
            total = s if total is None else total + s
            count += int(mask.sum().item())
    finally:
        model.train(was_training)
    if total is None or count == 0:
        raise ValueError("empty calibration set")
    return (total / count).cpu(), count


def build_mapping(tokenizer, chosen: list[int], mean_log_probs: torch.Tensor | None = None, calibration: int = 0) -> dict[str, Any]:
    digits = {}
    for d, i in enumerate(chosen):
        entry: dict[str, Any] = {"id": int(i), "token": tokenizer.convert_ids_to_tokens(int(i)), "text": tokenizer.decode([int(i)])}
        if mean_log_probs is not None:
            entry["meanLogProb"] = float(mean_log_probs[i])
        digits[str(d)] = entry
    return {
        "method": METHOD,
        "description": (
            "digits 0-9 -> the base model's 10 least-likely tokens: mean log-softmax over the prompts of the "
            "first up-to-32 training samples; special/added, digit-bearing, chunk-punctuation-only and "
            "non-round-tripping tokens excluded; ascending order assigned to 0..9"
        ),
        "calibrationSamples": calibration,
        "digits": digits,
    }


def select_action_tokens(model, tokenizer, calibration_batches: list[dict[str, torch.Tensor]], device=None) -> dict[str, Any]:
    mean, _ = mean_log_softmax(model, calibration_batches, device=device)
    vocab = min(mean.shape[0], len(tokenizer))
    chosen = pick_least_likely(tokenizer, mean[:vocab])
    return build_mapping(tokenizer, chosen, mean, calibration=len(calibration_batches))


def digit_ids(mapping: dict[str, Any]) -> list[int]:
    return [int(mapping["digits"][str(d)]["id"]) for d in range(10)]


def encode_action_text(tokenizer, text: str, mapping: dict[str, Any]) -> list[int]:
    """Token ids of an action text: each digit its mapped id, the runs between digits tokenized normally."""
    ids_for = digit_ids(mapping)
    out: list[int] = []
    for part in _DIGIT_SPLIT.split(text):
        if not part:
            continue
        if len(part) == 1 and part.isdigit() and part in "0123456789":
            out.append(ids_for[int(part)])
        else:
            out.extend(tokenizer.encode(part, add_special_tokens=False))
    return out


def decode_action_ids(tokenizer, ids: Iterable[int], mapping: dict[str, Any], skip_special_tokens: bool = False) -> str:
    """Inverse of ``encode_action_text``: mapped ids back to digits, every other run decoded normally."""
    back = {i: str(d) for d, i in enumerate(digit_ids(mapping))}
    parts: list[str] = []
    run: list[int] = []
    for i in ids:
        i = int(i)
        if i in back:
            if run:
                parts.append(tokenizer.decode(run, skip_special_tokens=skip_special_tokens))
                run = []
            parts.append(back[i])
        else:
            run.append(i)
    if run:
        parts.append(tokenizer.decode(run, skip_special_tokens=skip_special_tokens))
    return "".join(parts)


def save_mapping(mapping: dict[str, Any], directory: str | Path) -> Path:
    p = Path(directory) / ACTION_TOKENS_FILE
    p.write_text(json.dumps(mapping, indent=2, ensure_ascii=False) + "\n")
    return p


def load_mapping(directory: str | Path) -> dict[str, Any] | None:
    p = Path(directory) / ACTION_TOKENS_FILE
    if not p.is_file():
        return None
    return json.loads(p.read_text())
