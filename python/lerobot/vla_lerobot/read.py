"""Reads a LeRobot dataset with lerobot's own LeRobotDataset for `vla data import-lerobot`.

A line-per-message protocol on stdin/stdout: it prints `{"info": ...}`, the dataset's metadata
(codebase version, fps, robot type, features with their names, episode count), so the caller can
check its action mapping before anything is decoded; then reads one line, either `null` (stop) or
`{"out": dir, "cameras": [...], "limit": n}`, writes each episode's frames (decoded by lerobot,
saved as PNG) and its per-frame numeric columns and tasks under `out`, one
`episode-<index>.json` per episode, printing `{"episode": e, "of": n}` after each and `{"done": true}`
at the end. The caller maps them to D_rob. Runs offline: the dataset is read from --root only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import lerobot  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402
from lerobot.datasets.utils import BackwardCompatibilityError  # noqa: E402

# Columns LeRobot adds to every dataset; they are bookkeeping, not recorded signals.
BOOKKEEPING = {"timestamp", "frame_index", "episode_index", "index", "task_index"}


def load(root: str) -> LeRobotDataset:
    # A local dataset needs no hub id; lerobot only uses it to name the dataset.
    try:
        return LeRobotDataset(f"local/{Path(root).name}", root=root, return_uint8=True, video_backend="pyav")
    except BackwardCompatibilityError:
        version = json.loads((Path(root) / "meta" / "info.json").read_text()).get("codebase_version")
        raise SystemExit(
            f"error: LeRobot format {version} is not supported (lerobot {lerobot.__version__} reads v3.0); "
            "convert it first with lerobot's `python -m lerobot.scripts.convert_dataset_v21_to_v30`"
        ) from None


def info(dataset: LeRobotDataset) -> dict:
    return {
        "codebaseVersion": str(dataset.meta.info.codebase_version),
        "fps": dataset.fps,
        "robotType": dataset.meta.robot_type,
        "totalEpisodes": dataset.num_episodes,
        "totalFrames": dataset.num_frames,
        "features": {
            name: {"dtype": f["dtype"], "shape": list(f["shape"]), "names": f.get("names")}
            for name, f in dataset.features.items()
        },
    }


def write_episodes(dataset: LeRobotDataset, out: Path, cameras: list[str], limit: int | None) -> None:
    numeric = [k for k, f in dataset.features.items() if f["dtype"] not in ("video", "image", "string") and k not in BOOKKEEPING]
    episodes = dataset.meta.episodes
    count = len(episodes) if limit is None else min(limit, len(episodes))
    for e in range(count):
        meta = episodes[e]
        start, end = int(meta["dataset_from_index"]), int(meta["dataset_to_index"])
        columns: dict[str, list] = {k: [] for k in numeric}
        tasks: list[str] = []
        frames: dict[str, list[str]] = {c: [] for c in cameras}
        for step, idx in enumerate(range(start, end)):
            item = dataset[idx]
            tasks.append(item["task"])
            for k in numeric:
                columns[k].append(np.asarray(item[k], dtype=np.float64).reshape(-1).tolist())
            for camera in cameras:
                path = out / f"episode-{e}" / camera / f"{step:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                # CHW uint8 as lerobot returns it (return_uint8) -> HWC for PIL.
                Image.fromarray(item[camera].permute(1, 2, 0).numpy()).save(path, optimize=False)
                frames[camera].append(str(path.relative_to(out)))
        record = {"episodeIndex": int(meta["episode_index"]), "length": end - start, "tasks": tasks, "columns": columns, "frames": frames}
        (out / f"episode-{e}.json").write_text(json.dumps(record))
        print(json.dumps({"episode": e, "of": count}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m vla_lerobot.read")
    parser.add_argument("--root", required=True, help="local LeRobot dataset root (holds meta/info.json)")
    args = parser.parse_args()
    if not (Path(args.root) / "meta" / "info.json").is_file():
        raise SystemExit("error: not a LeRobot dataset (meta/info.json missing)")
    dataset = load(args.root)
    # One process for both steps: importing lerobot (torch) costs more than reading a small dataset.
    print(json.dumps({"info": info(dataset)}), flush=True)
    line = sys.stdin.readline()
    request = json.loads(line) if line.strip() else None
    if request is None:
        return
    write_episodes(dataset, Path(request["out"]), request["cameras"], request.get("limit"))
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    main()
