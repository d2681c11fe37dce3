"""Writes a LeRobot dataset (format v3.0) with lerobot's own LeRobotDataset for `vla data export-lerobot`.

Reads the export spec the caller staged (`--spec`: fps, robot type, cameras, episodes with their
frames as image files, actions, states, task and per-frame language strings), then
LeRobotDataset.create + add_frame + save_episode + finalize into `--root`, and the dataset card
(README.md) as lerobot writes it for the hub. Runs offline.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402
from lerobot.datasets.utils import create_lerobot_dataset_card  # noqa: E402

POSE_NAMES = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]


def image_feature(camera: str) -> str:
    return f"observation.images.{camera}"


def load_image(staged: Path, path: str) -> np.ndarray:
    return np.asarray(Image.open(staged / path).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m vla_lerobot.write")
    parser.add_argument("--spec", required=True, help="export spec JSON; frame paths are relative to its folder")
    parser.add_argument("--root", required=True, help="LeRobot dataset root to create (must not exist)")
    args = parser.parse_args()
    spec_path = Path(args.spec)
    staged = spec_path.parent
    spec = json.loads(spec_path.read_text())
    episodes = spec["episodes"]
    language = spec["languageFeatures"]

    first = episodes[0]["steps"][0]["frames"]
    features: dict = {}
    for camera in spec["cameras"]:
        height, width, _ = load_image(staged, first[camera]).shape
        features[image_feature(camera)] = {"dtype": "video", "shape": (height, width, 3), "names": ["height", "width", "channels"]}
    features["observation.state"] = {"dtype": "float32", "shape": (7,), "names": POSE_NAMES}
    features["action"] = {"dtype": "float32", "shape": (7,), "names": POSE_NAMES}
    for name in language:
        features[name] = {"dtype": "string", "shape": (1,), "names": None}

    dataset = LeRobotDataset.create(spec["repoId"], fps=spec["fps"], root=args.root, robot_type=spec["robotType"], features=features)
    for episode in episodes:
        for i, step in enumerate(episode["steps"]):
            frame = {"observation.state": np.asarray(step["state"], dtype=np.float32), "action": np.asarray(step["action"], dtype=np.float32), "task": episode["task"]}
            for camera in spec["cameras"]:
                image = load_image(staged, step["frames"][camera])
                expected = features[image_feature(camera)]["shape"]
                if image.shape != expected:
                    raise SystemExit(
                        f"trajectory {episode['id']} step {i} camera {camera}: frame is {image.shape[1]}x{image.shape[0]}, "
                        f"but a LeRobot dataset has one size per camera ({expected[1]}x{expected[0]}, from the first trajectory)"
                    )
                frame[image_feature(camera)] = image
            for name in language:
                frame[name] = step["language"][name]
            dataset.add_frame(frame)
        dataset.save_episode()
        print(json.dumps({"episode": episode["id"]}), flush=True)
    dataset.finalize()

    card = create_lerobot_dataset_card(tags=["vla-pipelines"], dataset_info=dataset.meta.info, license=spec.get("license"), repo_id=spec["repoId"])
    card.save(str(Path(args.root) / "README.md"))


if __name__ == "__main__":
    main()
