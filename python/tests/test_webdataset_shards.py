"""Shards written by the project's own shard code (activities/shard, run through
test/helpers/write-shards.ts) read back with the real ``webdataset`` package: one sample per key,
the ShardSample JSON and the D_rob frame bytes as they were written."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from conftest import PYTHON_ROOT

REPO_ROOT = PYTHON_ROOT.parent
#: Six Bridge episodes with a validation fraction of 0.5 (seed 0) give shards of both splits.
EPISODES = 6


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory) -> dict:
    tsx = REPO_ROOT / "node_modules" / ".bin" / "tsx"
    assert tsx.exists(), f"{tsx} is missing: run `bash infra/setup.sh --npm-only` to install the npm packages"
    out = tmp_path_factory.mktemp("wds")
    proc = subprocess.run(
        [str(tsx), "test/helpers/write-shards.ts", str(out), str(EPISODES)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest_path = Path(json.loads(proc.stdout.strip().splitlines()[-1])["manifest"])
    return {"root": out, "manifest_path": manifest_path, "manifest": json.loads(manifest_path.read_text())}


def _tar_members(path: Path) -> dict[str, dict[str, bytes]]:
    """What the shard holds, by stdlib tarfile: key -> {extension: bytes}."""
    members: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            key, ext = m.name.split(".", 1)
            members.setdefault(key, {})[ext] = tar.extractfile(m).read()
    return members


def _shard_paths(shard_set: dict, split: str | None = None) -> list[str]:
    root = shard_set["manifest_path"].parent
    return [str(root / s["path"]) for s in shard_set["manifest"]["shards"] if split is None or s["split"] == split]


def test_the_shard_set_has_both_splits(shard_set):
    splits = {s["split"] for s in shard_set["manifest"]["shards"]}
    assert splits == {"train", "validation"}, shard_set["manifest"]["counts"]


def test_webdataset_reads_every_sample_byte_for_byte(shard_set):
    import webdataset as wds

    for entry, path in zip(shard_set["manifest"]["shards"], _shard_paths(shard_set)):
        written = _tar_members(Path(path))
        raw = list(wds.WebDataset([path], shardshuffle=False, empty_check=False))
        assert len(raw) == entry["samples"] == len(written), path
        for sample in raw:
            key = sample["__key__"]
            assert key in written, f"{path}: webdataset key {key!r} is no key of the tar"
            exts = {k for k in sample if not k.startswith("__")}
            assert exts == set(written[key]), (key, exts, set(written[key]))
            for ext in exts:
                assert sample[ext] == written[key][ext], (key, ext)


def test_webdataset_decodes_the_json_and_image(shard_set):
    """Decoded as a training loader would: the JSON a ShardSample, the image the D_rob frame it was cut from."""
    import webdataset as wds
    from PIL import Image

    from vla_py.border import validate

    drob = json.loads((shard_set["root"] / "bridge" / "manifest.json").read_text())
    frame_sha256 = {f["sha256"] for f in drob["files"] if f["path"].startswith("frames/")}
    stages: Counter[str] = Counter()
    for entry, path in zip(shard_set["manifest"]["shards"], _shard_paths(shard_set)):
        written = _tar_members(Path(path))
        decoded = list(wds.WebDataset([path], shardshuffle=False, empty_check=False).decode("pil"))
        raw = list(wds.WebDataset([path], shardshuffle=False, empty_check=False))
        assert [s["__key__"] for s in decoded] == [s["__key__"] for s in raw]
        for sample, undecoded in zip(decoded, raw):
            key = sample["__key__"]
            meta = sample["json"]
            assert isinstance(meta, dict) and meta == json.loads(written[key]["json"])
            validate("shard-sample", meta, root=f"{path}:{key}.json")
            assert meta["key"] == key and meta["trajectoryId"] in entry["trajectories"]
            image = sample[meta["image"]]
            assert isinstance(image, Image.Image)
            raw_image = undecoded[meta["image"]]
            assert hashlib.sha256(raw_image).hexdigest() in frame_sha256, f"{key}: image is no D_rob frame"
            with Image.open(io.BytesIO(raw_image)) as expected:
                assert image.size == expected.size and image.tobytes() == expected.convert("RGB").tobytes()
            stages[meta["stage"]] += 1
    assert dict(stages) == shard_set["manifest"]["counts"]["byStage"]
    assert sum(stages.values()) == shard_set["manifest"]["counts"]["samples"]


def test_a_training_loader_pipeline_over_the_train_split(shard_set):
    """The pipeline docs/dataset-format.md shows: decode, pick the fields, batch."""
    import webdataset as wds

    dataset = wds.WebDataset(_shard_paths(shard_set, "train"), shardshuffle=False, empty_check=False).decode("pil").to_tuple("jpg;png", "json")
    pairs = list(dataset)
    assert len(pairs) == shard_set["manifest"]["counts"]["bySplit"]["train"]["samples"]
    for image, meta in pairs:
        assert image.mode == "RGB" and meta["messages"][1]["role"] == "assistant"
