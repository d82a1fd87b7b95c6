"""Exact replicas of the Re-ID dataset layouts, with small synthetic images."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, brightness: int = 200, size: tuple[int, int] = (16, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    pixels = np.clip(brightness + rng.normal(0, 3, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def make_market(root: Path, train_pids=(2, 7, 10), test_pids=(3, 5), cams=(1, 2, 3), per_cam: int = 2,
                junk: int = 2, distractors: int = 2, dark: dict[int, int] | None = None) -> Path:
    """``dark`` maps a training pid to how many of its images are dark (rejected by the double estimator)."""
    dark = dark or {}
    for pid in train_pids:
        n = 0
        for cam in cams:
            for i in range(per_cam):
                brightness = 30 if n < dark.get(pid, 0) else 200
                write_image(root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_{1000 + 10 * i:06d}_00.jpg", brightness)
                n += 1
    for pid in test_pids:
        write_image(root / "query" / f"{pid:04d}_c{cams[0]}s1_000100_00.jpg")
        for cam in cams[1:]:
            for i in range(per_cam):
                write_image(root / "bounding_box_test" / f"{pid:04d}_c{cam}s2_{2000 + 10 * i:06d}_00.jpg")
    for i in range(junk):
        write_image(root / "bounding_box_test" / f"-1_c{cams[0]}s1_{3000 + i:06d}_00.jpg")
    for i in range(distractors):
        write_image(root / "bounding_box_test" / f"0000_c{cams[-1]}s1_{4000 + i:06d}_00.jpg")
    return root
