"""LoRA trainer: ``python -m vla_py.train --config CONFIG.json`` (see trainer.py)."""

from .action_tokens import decode_action_ids, encode_action_text
from .data import ShardDataset, build_example

__all__ = ["ShardDataset", "build_example", "decode_action_ids", "encode_action_text"]
