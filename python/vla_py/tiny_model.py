"""A tiny, random-weight Gemma 3 vision-language model built fully offline, for tests and smoke runs.

    python -m vla_py.tiny_model --out DIR [--seed 0]

The directory it writes loads with ``AutoProcessor.from_pretrained(DIR)`` and
``AutoModelForImageTextToText.from_pretrained(DIR)``: a real ``Gemma3ForConditionalGeneration``
(tiny SigLIP vision tower, tiny Gemma 3 text model), a byte-level BPE tokenizer trained with the
``tokenizers`` library on an embedded corpus of the project's prompt wording (every digit its own
token), the Gemma 3 special tokens and a Gemma-style chat template. A few MB, built in seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# The project's prompt wording (data-schemas/prompts.ts) plus robot words: the tokenizer's training corpus.
CORPUS = [
    "The robot's task is: \"pick up the red block and put it in the bowl\".",
    "Looking at the image, list every high-level subtask the robot must do, in order, one per line,",
    'numbered "1.", "2.", ... The first subtask starts with "Move to".',
    'Current subtask: "Move to the red block".',
    "Describe briefly how the gripper must move to do it. Axes: +x forward (away from the robot base),",
    "+y left, +z up; say whether the gripper should be open or closed.",
    "Motion plan: move the gripper forward and down, keep it open.",
    "Output only the action chunk: a list of [dx, dy, dz, gripper] with dx, dy, dz in metres",
    "(+x forward, +y left, +z up) and gripper 1 for open, 0 for closed.",
    "1. Move to the red block\n2. Grasp the red block\n3. Move to the bowl\n4. Release the block",
    "[[0.012, -0.003, 0.000, 1], [0.020, 0.000, -0.015, 0]]",
    "Move the gripper left and up, then close it around the cup. Lift the drawer handle, open the drawer.",
    "Push the green cube to the right. Place the spoon next to the towel. Stack the blue block on the yellow one.",
    "robot arm gripper table object cube cup bowl plate drawer door cabinet sponge towel spoon fork knife",
    "forward backward left right up down above below near far towards away closer slightly carefully",
    "What is in the image? Describe the scene. Is the gripper open or closed? How many objects are there?",
    "yes no the a an of to in on at with for from by and or but then until while",
    "user\nmodel\nuser\nmodel\n",
]

SPECIAL_TOKENS = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
]

# Gemma 3's template, simplified: the assistant role is written "model"; images are <start_of_image>,
# which the processor expands to the image's soft tokens.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)

IMAGE_SIZE = 32
PATCH_SIZE = 8
MM_TOKENS_PER_IMAGE = 4


def build_tokenizer_object(vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    # Digits are split one per pre-token first, so no merge can ever join two digits.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tok


def build_tiny_vlm(out_dir: str | Path, seed: int = 0) -> Path:
    """Writes the tiny model, tokenizer and processor to ``out_dir``; returns it."""
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3Processor,
        GenerationConfig,
        PreTrainedTokenizerFast,
        SiglipVisionConfig,
    )
    from transformers.models.gemma3.configuration_gemma3 import Gemma3TextConfig
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tok_obj = build_tokenizer_object()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok_obj,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
            "sot_token": "<start_of_turn>",
            "eot_token": "<end_of_turn>",
        },
        padding_side="right",
        model_max_length=4096,
        add_bos_token=False,
        add_eos_token=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}

    image_processor = Gemma3ImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        image_seq_length=MM_TOKENS_PER_IMAGE,
    )

    vision = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        vision_use_head=False,
    )
    text = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=4096,
        sliding_window=64,
        query_pre_attn_scalar=32,
        pad_token_id=ids["<pad>"],
        bos_token_id=ids["<bos>"],
        eos_token_id=ids["<eos>"],
        # Larger than Gemma's 0.02 so the frozen tied embeddings give the logits a usable range: a LoRA can
        # then fit a batch in a few dozen steps (with 0.02 the final norm caps every logit near 1).
        initializer_range=0.2,
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=MM_TOKENS_PER_IMAGE,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
        tie_word_embeddings=True,
        initializer_range=0.2,
    )
    config.pad_token_id = ids["<pad>"]
    config.bos_token_id = ids["<bos>"]
    config.eos_token_id = ids["<eos>"]

    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<bos>"],
        eos_token_id=[ids["<eos>"], ids["<end_of_turn>"]],
        pad_token_id=ids["<pad>"],
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = build_tiny_vlm(args.out, seed=args.seed)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps({"out": str(out.resolve()), "bytes": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
