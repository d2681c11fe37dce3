"""WebDataset shards as a map-style dataset, and the sample -> model inputs step.

Each shard is indexed once with stdlib ``tarfile`` (member offsets only); samples are read lazily by
offset, so memory stays flat and a resumed run can skip batches exactly. ``build_example`` is the pure
tokenization step: the user turn (image + text) through the processor's chat template with a
generation prompt, then the assistant text and the end-of-turn token; labels are -100 everywhere but
on the assistant tokens.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from ..border import BorderError, validate
from .events import BadConfig, CorruptShard

IGNORE_INDEX = -100
_KEY_EXT = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # webdataset: the key ends at the basename's first dot


def validate_sample(obj: Any) -> None:
    """ShardSample (vla_py/schemas/shard-sample.schema.json); raises a ValueError naming the field (``sample.messages[1]...``)."""
    validate("shard-sample", obj, root="sample")


@dataclass(frozen=True)
class SampleRef:
    shard: str
    key: str
    stage: str
    json_offset: int
    json_size: int
    image_offset: int
    image_size: int


def index_shard(path: str) -> list[SampleRef]:
    """All samples of one shard, in member order. Raises CorruptShard naming the shard."""
    try:
        file_size = os.path.getsize(path)
    except OSError as e:
        raise CorruptShard(path, f"cannot read: {e}") from None
    groups: dict[str, dict[str, tuple[int, int]]] = {}
    order: list[str] = []
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if member.offset_data + member.size > file_size:
                    raise CorruptShard(path, f"truncated (member {member.name} runs past the end of the file)")
                m = _KEY_EXT.match(member.name)
                if not m:
                    continue
                key, ext = m.group(1), m.group(2)
                if key not in groups:
                    groups[key] = {}
                    order.append(key)
                groups[key][ext] = (member.offset_data, member.size)
            end = tar.offset  # where the end-of-archive marker must start
    except CorruptShard:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise CorruptShard(path, f"not a valid tar file: {e}") from None
    # tarfile takes a clean EOF for the end of the archive; a cut at a block boundary would pass unseen.
    with open(path, "rb") as f:
        f.seek(end)
        marker = f.read(512)
    if len(marker) < 512 or marker.count(0) != 512:
        raise CorruptShard(path, "truncated (no end-of-archive marker)")

    refs: list[SampleRef] = []
    with open(path, "rb") as f:
        for key in order:
            files = groups[key]
            if "json" not in files:
                raise CorruptShard(path, f"sample {key} has no .json")
            off, size = files["json"]
            f.seek(off)
            try:
                obj = json.loads(f.read(size).decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise CorruptShard(path, f"sample {key}: bad json: {e}") from None
            try:
                validate_sample(obj)
            except BorderError as e:
                raise CorruptShard(path, f"sample {key}: {e}") from None
            ext = obj["image"]
            if ext not in files:
                raise CorruptShard(path, f"sample {key} has no .{ext} image")
            ioff, isize = files[ext]
            refs.append(SampleRef(path, key, obj["stage"], off, size, ioff, isize))
    if not refs:
        raise CorruptShard(path, "no samples")
    return refs


class ShardDataset(Dataset):
    """Map-style dataset over WebDataset tar shards; items are {"sample", "image", "shard", "key"}."""

    def __init__(self, shards: list[str]):
        self.shards = list(shards)
        self.refs: list[SampleRef] = []
        for s in self.shards:
            self.refs.extend(index_shard(s))

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from PIL import Image

        ref = self.refs[i]
        try:
            with open(ref.shard, "rb") as f:
                f.seek(ref.json_offset)
                sample = json.loads(f.read(ref.json_size).decode("utf-8"))
                f.seek(ref.image_offset)
                data = f.read(ref.image_size)
            image = Image.open(io.BytesIO(data))
            image.load()
            image = image.convert("RGB")
        except (OSError, ValueError) as e:
            raise CorruptShard(ref.shard, f"sample {ref.key}: {e}") from None
        return {"sample": sample, "image": image, "shard": ref.shard, "key": ref.key}


# ---------------------------------------------------------------------------------------------
# Tokenization


def _tokenizer(processor):
    return getattr(processor, "tokenizer", processor)


_suffix_cache: dict[int, list[int]] = {}


def end_of_turn_ids(processor) -> list[int]:
    """The ids the chat template writes after an assistant message (Gemma: <end_of_turn>), else eos."""
    key = id(processor)
    if key in _suffix_cache:
        return _suffix_cache[key]
    tok = _tokenizer(processor)
    placeholder = "ASSISTANTPLACEHOLDER"
    user = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    ids: list[int] = []
    try:
        prompt = processor.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
        full = processor.apply_chat_template(
            user + [{"role": "assistant", "content": [{"type": "text", "text": placeholder}]}], tokenize=False
        )
        if full.startswith(prompt) and placeholder in full[len(prompt):]:
            suffix = full[len(prompt):].split(placeholder, 1)[1].rstrip()
            if suffix:
                ids = tok.encode(suffix, add_special_tokens=False)
    except Exception:  # noqa: BLE001 - templates vary; eos is the fallback
        ids = []
    if not ids and tok.eos_token_id is not None:
        ids = [tok.eos_token_id]
    _suffix_cache[key] = ids
    return ids


def image_token_id(processor) -> int | None:
    """The id of the image soft token (the tokenizer's ``image_token_id`` first: Gemma3Processor's own
    attribute ends up on <start_of_image>)."""
    v = getattr(_tokenizer(processor), "image_token_id", None)
    if v is None:
        v = getattr(processor, "image_token_id", None)
    return v


def encode_prompt(processor, sample: dict, image) -> dict[str, torch.Tensor]:
    """The user turn (image + text) with the generation prompt, as the processor encodes it (batch of 1)."""
    user = sample["messages"][0]
    prompt = processor.apply_chat_template([user], add_generation_prompt=True, tokenize=False)
    return processor(text=[prompt], images=[[image]], return_tensors="pt", add_special_tokens=False)


def build_example(
    processor,
    sample: dict,
    image,
    max_length: int | None = None,
    action_mapping: dict | None = None,
) -> dict[str, torch.Tensor]:
    """One training example: input_ids, attention_mask, labels (-100 except on assistant tokens),
    pixel_values and whatever else the processor returns (token_type_ids for Gemma 3).

    With ``action_mapping`` (action-tokens), the digits of an ``action`` sample's assistant text become
    the mapped token ids. Sequences longer than ``max_length`` are cut from the right.
    """
    from .action_tokens import encode_action_text

    tok = _tokenizer(processor)
    enc = encode_prompt(processor, sample, image)
    prompt_ids = enc["input_ids"][0].tolist()
    text = sample["messages"][1]["content"][0]["text"]
    if action_mapping is not None and sample.get("stage") == "action":
        answer = encode_action_text(tok, text, action_mapping)
    else:
        answer = tok.encode(text, add_special_tokens=False)
    answer = list(answer) + end_of_turn_ids(processor)

    input_ids = prompt_ids + answer
    labels = [IGNORE_INDEX] * len(prompt_ids) + answer
    out: dict[str, torch.Tensor] = {}
    n = len(input_ids)
    if max_length is not None and n > max_length:
        img_id = image_token_id(processor)
        if img_id is not None and img_id in input_ids[max_length:]:
            raise BadConfig(
                f"maxSequenceLength {max_length} cuts into the image tokens of sample {sample.get('key')} "
                f"(its prompt alone is {len(prompt_ids)} tokens); raise maxSequenceLength"
            )
        input_ids, labels, n = input_ids[:max_length], labels[:max_length], max_length
    img_id = image_token_id(processor)
    if img_id is not None:
        labels = [IGNORE_INDEX if t == img_id else l for t, l in zip(input_ids, labels)]
    out["input_ids"] = torch.tensor(input_ids, dtype=torch.long)
    out["attention_mask"] = torch.ones(n, dtype=torch.long)
    out["labels"] = torch.tensor(labels, dtype=torch.long)
    for k, v in enc.items():
        if k in ("input_ids", "attention_mask") or v is None:
            continue
        if not isinstance(v, torch.Tensor):
            continue
        if k in ("token_type_ids", "mm_token_type_ids"):
            full = torch.zeros(len(prompt_ids) + len(answer), dtype=v.dtype)
            full[: v.shape[1]] = v[0]
            out[k] = full[:n]
        else:
            out[k] = v  # pixel_values and friends: leading dim = number of images
    return out


def pad_batch(examples: list[dict[str, torch.Tensor]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pads the sequence fields and concatenates the image fields."""
    longest = max(e["input_ids"].shape[0] for e in examples)
    batch: dict[str, torch.Tensor] = {}
    seq_pad = {"input_ids": pad_token_id, "attention_mask": 0, "labels": IGNORE_INDEX, "token_type_ids": 0, "mm_token_type_ids": 0}
    for k in examples[0]:
        if k in seq_pad:
            rows = []
            for e in examples:
                v = e[k]
                pad = torch.full((longest - v.shape[0],), seq_pad[k], dtype=v.dtype)
                rows.append(torch.cat([v, pad]))
            batch[k] = torch.stack(rows)
        else:
            batch[k] = torch.cat([e[k] for e in examples], dim=0)
    return batch


class Collator:
    def __init__(self, processor, max_length: int | None, action_mapping: dict | None = None):
        self.processor = processor
        self.max_length = max_length
        self.action_mapping = action_mapping
        tok = _tokenizer(processor)
        pad = tok.pad_token_id
        if pad is None:
            pad = tok.eos_token_id if tok.eos_token_id is not None else 0
        self.pad_token_id = pad

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        examples = [
            build_example(self.processor, it["sample"], it["image"], self.max_length, self.action_mapping) for it in items
        ]
        return pad_batch(examples, self.pad_token_id)
