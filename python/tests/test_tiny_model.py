import hashlib
from pathlib import Path

import torch


def _digest(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_tiny_model_loads_offline(tiny_model_dir):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    size = sum(p.stat().st_size for p in tiny_model_dir.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Output only the action chunk"}]}]
    prompt = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    enc = processor(text=[prompt], images=[[Image.new("RGB", (50, 40), (10, 200, 30))]], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model(**enc)
    assert out.logits.shape[-1] == model.config.text_config.vocab_size
    assert (enc["input_ids"] == model.config.image_token_index).sum().item() == model.config.mm_tokens_per_image


def test_digits_are_single_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "[[0.012, -0.003, 0.000, 1], [0.020, 0.000, -0.015, 0]] 9876543210"
    ids = tok.encode(text, add_special_tokens=False)
    pieces = [tok.decode([i]) for i in ids]
    digits_in_pieces = [p for p in pieces if any(c.isdigit() for c in p)]
    assert all(len(p) == 1 for p in digits_in_pieces), pieces
    assert sum(c.isdigit() for c in text) == len(digits_in_pieces)
    assert tok.decode(ids) == text


def test_tiny_model_is_deterministic(tmp_path):
    from vla_py.tiny_model import build_tiny_vlm

    a = build_tiny_vlm(tmp_path / "a", seed=3)
    b = build_tiny_vlm(tmp_path / "b", seed=3)
    c = build_tiny_vlm(tmp_path / "c", seed=4)
    assert _digest(a) == _digest(b)
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
