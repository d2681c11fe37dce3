import io
import json

import pytest
import torch

from conftest import make_sample, make_samples, png_bytes, write_shard

CHUNK = "[[0.012, -0.003, 0.000, 1], [0.020, 0.000, -0.015, 0]]"


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def base_model(tiny_model_dir):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()


def _image():
    from PIL import Image

    return Image.open(io.BytesIO(png_bytes((200, 10, 10)))).convert("RGB")


def test_prompt_tokens_are_masked(processor):
    from vla_py.train.data import IGNORE_INDEX, build_example, encode_prompt, pad_batch

    tok = processor.tokenizer
    sample = make_sample(2, "action")
    ex = build_example(processor, sample, _image())
    prompt_len = encode_prompt(processor, sample, _image())["input_ids"].shape[1]
    answer = tok.encode(sample["messages"][1]["content"][0]["text"], add_special_tokens=False)
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    ids, labels = ex["input_ids"].tolist(), ex["labels"].tolist()
    assert len(ids) == prompt_len + len(answer) + 1
    assert labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert labels[prompt_len:] == answer + [eot] == ids[prompt_len:]
    image_id = tok.image_token_id
    assert image_id in ids[:prompt_len]
    assert all(l == IGNORE_INDEX for t, l in zip(ids, labels) if t == image_id)
    assert ex["pixel_values"].shape[0] == 1
    prompt_tti = encode_prompt(processor, sample, _image())["token_type_ids"][0].tolist()
    assert ex["token_type_ids"].tolist() == prompt_tti + [0] * (len(ids) - prompt_len)
    assert all(tt == 1 for t, tt in zip(ids, prompt_tti) if t == image_id)
    # the user prompt ends with the generation prompt
    assert tok.decode(ids[:prompt_len]).endswith("<start_of_turn>model\n")

    # padding: labels -100 and attention 0 on pad positions
    short = make_sample(1, "motion_plan")
    ex2 = build_example(processor, short, _image())
    batch = pad_batch([ex, ex2], tok.pad_token_id)
    n2 = ex2["input_ids"].shape[0]
    assert batch["input_ids"].shape[1] == len(ids) > n2
    assert (batch["labels"][1, n2:] == IGNORE_INDEX).all()
    assert (batch["attention_mask"][1, n2:] == 0).all()
    assert (batch["input_ids"][1, n2:] == tok.pad_token_id).all()
    assert batch["pixel_values"].shape[0] == 2

    # truncation from the right
    ex3 = build_example(processor, sample, _image(), max_length=prompt_len + 3)
    assert ex3["input_ids"].tolist() == ids[: prompt_len + 3]
    assert ex3["labels"].tolist() == labels[: prompt_len + 3]
    from vla_py.train.events import BadConfig

    with pytest.raises(BadConfig):
        build_example(processor, sample, _image(), max_length=ids.index(image_id) + 2)


def test_default_targets_are_language_model_linears_only(base_model):
    from peft import LoraConfig, get_peft_model

    from vla_py.train.trainer import language_model_linear_names

    names = language_model_linear_names(base_model)
    assert names and all(n.startswith("model.language_model.") for n in names)
    assert {n.split(".")[-1] for n in names} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    n_layers = base_model.config.text_config.num_hidden_layers
    assert len(names) == 7 * n_layers
    only_q = language_model_linear_names(base_model, ["q_proj"])
    assert only_q == [n for n in names if n.endswith(".q_proj")]  # the vision tower's q_proj is not matched
    assert any("vision_tower" in n and n.endswith("q_proj") for n, _ in base_model.named_modules())

    import copy

    peft_model = get_peft_model(copy.deepcopy(base_model), LoraConfig(r=4, lora_alpha=8, target_modules=names))
    lora_params = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert lora_params and all("lora_" in n and "language_model" in n for n in lora_params)
    assert not any(k in n for n in lora_params for k in ("vision_tower", "multi_modal_projector", "lm_head"))

    from vla_py.train.events import BadConfig

    with pytest.raises(BadConfig, match="targetModules"):
        language_model_linear_names(base_model, ["no_such_proj"])


def test_shard_index_and_corruption(tmp_path):
    from vla_py.train.data import ShardDataset
    from vla_py.train.events import CorruptShard

    good = write_shard(tmp_path / "good.tar", make_samples(4))
    ds = ShardDataset([str(good)])
    assert len(ds) == 4
    item = ds[3]
    assert item["sample"]["key"] == make_samples(4)[3]["key"] and item["image"].mode == "RGB"
    # the auxiliary direction-label samples (shardDataset's directionLabels) are a stage like the others
    direction = dict(make_samples(1)[0], stage="direction", step=1, key="traj-000_direction_0001")
    assert ShardDataset([str(write_shard(tmp_path / "direction.tar", [direction]))])[0]["sample"]["stage"] == "direction"

    data = good.read_bytes()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[: len(data) // 2])
    cut_in_member = tmp_path / "cut.tar"
    cut_in_member.write_bytes(data[: 512 * 5 + 100])
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"this is not a tar file" * 100)
    for bad in (truncated, cut_in_member, garbage):
        with pytest.raises(CorruptShard) as err:
            ShardDataset([str(good), str(bad)])
        assert err.value.shard == str(bad) and err.value.code == "corrupt_shard"

    s = make_samples(1)[0]
    bad_json = dict(s, stage="nope")
    with pytest.raises(CorruptShard, match="stage"):
        ShardDataset([str(write_shard(tmp_path / "badjson.tar", [bad_json]))])
    import tarfile

    no_image = tmp_path / "noimage.tar"
    with tarfile.open(no_image, "w") as tar:
        raw = json.dumps(s).encode()
        info = tarfile.TarInfo(f"{s['key']}.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    with pytest.raises(CorruptShard, match="no .png"):
        ShardDataset([str(no_image)])


def test_config_validation_names_the_field(tmp_path):
    from conftest import base_config
    from vla_py.train.config import load_config, parse_config
    from vla_py.train.events import BadConfig

    ok = base_config(tmp_path / "model", {"train": ["/a.tar"]}, tmp_path / "out")
    cfg = parse_config(ok)
    assert cfg.lora.rank == 8 and cfg.precision == "fp32" and cfg.max_steps == 6 and cfg.validation_shards == []
    assert cfg.lora.target_modules is None and cfg.output_dir == str(tmp_path / "out")
    lora = ok["lora"]
    for bad, field in (
        ({"trainShards": []}, "config.trainShards"),
        ({"lora": {**lora, "rank": 0}}, "config.lora.rank"),
        ({"lora": {**lora, "rank": "8"}}, "config.lora.rank"),
        ({"lora": {**lora, "rank": True}}, "config.lora.rank"),
        ({"lora": {**lora, "dropout": 0.95}}, "config.lora.dropout"),
        ({"precision": "fp8"}, "config.precision"),
        ({"learningRate": "x"}, "config.learningRate"),
        ({"learningRate": float("nan")}, "config.learningRate"),
        ({"maxSteps": 0}, "config.maxSteps"),
        ({"actionRepresentation": "bins"}, "config.actionRepresentation"),
        ({"resumeFrom": str(tmp_path / "nope")}, "config.resumeFrom"),
        ({"lora": {**lora, "targetModules": ["q proj"]}}, "config.lora.targetModules"),
        ({"modelCard": {}}, "config.modelCard"),
        ({"progressEverySeconds": 30}, "progressEverySeconds"),
    ):
        with pytest.raises(BadConfig, match=field.replace(".", r"\.")):
            parse_config({**ok, **bad})
    # No field has a default on this side: each one missing is named, at every level.
    for name in ok:
        with pytest.raises(BadConfig, match=name):
            parse_config({k: v for k, v in ok.items() if k != name})
    for name in lora:
        with pytest.raises(BadConfig, match=name):
            parse_config({**ok, "lora": {k: v for k, v in lora.items() if k != name}})
    # The file is named too.
    path = tmp_path / "trainer-config.json"
    path.write_text(json.dumps({**ok, "lora": {**lora, "rank": 0}}))
    with pytest.raises(BadConfig) as e:
        load_config(path)
    assert str(path) in e.value.message and "config.lora.rank" in e.value.message


def test_a_bad_shard_sample_names_the_field(tmp_path):
    from vla_py.train.data import ShardDataset
    from vla_py.train.events import CorruptShard

    s = make_samples(1)[0]
    user, assistant = s["messages"]
    for bad, field in (
        ({"step": -1}, "sample.step"),
        ({"step": "3"}, "sample.step"),
        ({"key": "a b"}, "sample.key"),
        ({"image": "gif"}, "sample.image"),
        ({"stage": "nope"}, "sample.stage"),
        ({"messages": [user, {**assistant, "content": [{"type": "text", "text": ""}]}]}, "sample.messages[1].content[0].text"),
        ({"extra": 1}, "extra"),
    ):
        shard = write_shard(tmp_path / f"bad-{len(list(tmp_path.iterdir()))}.tar", [dict(s, **bad)])
        with pytest.raises(CorruptShard) as e:
            ShardDataset([str(shard)])
        assert field in e.value.message and e.value.shard == str(shard), e.value.message
    missing = {k: v for k, v in s.items() if k != "trajectoryId"}
    with pytest.raises(CorruptShard, match="trajectoryId"):
        ShardDataset([str(write_shard(tmp_path / "missing.tar", [missing]))])


def test_action_tokens_selection_and_round_trip(processor, base_model):
    from vla_py.train import action_tokens as at
    from vla_py.train.data import build_example, encode_prompt

    tok = processor.tokenizer
    samples = make_samples(6)
    batches = [encode_prompt(processor, s, _image()) for s in samples]
    mapping = at.select_action_tokens(base_model, tok, batches)
    again = at.select_action_tokens(base_model, tok, batches)
    assert mapping == again
    ids = at.digit_ids(mapping)
    assert len(set(ids)) == 10
    special = set(tok.all_special_ids) | {int(i) for i in tok.added_tokens_decoder}
    for i in ids:
        text = tok.decode([i])
        assert i not in special and not any(c.isdigit() for c in text)
        assert tok.encode(text, add_special_tokens=False) == [i]
    # ascending mean log-prob, and the ten are the lowest among acceptable tokens
    scores = [mapping["digits"][str(d)]["meanLogProb"] for d in range(10)]
    assert scores == sorted(scores)
    assert mapping["method"] == at.METHOD and mapping["calibrationSamples"] == 6

    enc = at.encode_action_text(tok, CHUNK, mapping)
    digits = [c for c in CHUNK if c.isdigit()]
    assert [i for i in enc if i in ids] == [ids[int(d)] for d in digits]
    assert at.decode_action_ids(tok, enc, mapping) == CHUNK
    assert not any(t in ids for t in tok.encode(CHUNK, add_special_tokens=False))

    sample = make_sample(2, "action")
    sample["messages"][1]["content"][0]["text"] = CHUNK
    ex = build_example(processor, sample, _image(), action_mapping=mapping)
    answer = [t for t in ex["labels"].tolist() if t != -100]
    assert answer[:-1] == enc
    # non-action stages keep plain text
    plan = make_sample(1, "motion_plan")
    ex2 = build_example(processor, plan, _image(), action_mapping=mapping)
    assert [t for t in ex2["labels"].tolist() if t != -100][:-1] == tok.encode(plan["messages"][1]["content"][0]["text"], add_special_tokens=False)
