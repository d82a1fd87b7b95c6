"""Test doubles of the three model-bearing stages, for tests of the build frame only.

They are deterministic and cheap, and they make the filter's decisions controllable: the double
estimator's confidence for keypoint k is the mean brightness of the k-th horizontal band of the image,
so a dark reference is rejected at eq. 10 and a dark generated image at eqs. 12-13. Nothing here is a
model and nothing they produce is a generated dataset.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from posedive.pose import PoseEstimate
from posedive.schema import BodyParams, Camera, ConditionRequest, ConditionSet, GenerationRequest, GeneratorInfo

WIDTH, HEIGHT = 32, 64


class DoubleRenderer:
    def __init__(self, num_poses: int = 12, width: int = WIDTH, height: int = HEIGHT, target_brightness: int = 230):
        self.num_poses, self.width, self.height = num_poses, width, height
        self.target_brightness = target_brightness
        self.rendered = 0

    def pose_ids(self) -> list[str]:
        return [f"double-{i:03d}" for i in range(self.num_poses)]

    def render(self, requests: Sequence[ConditionRequest]) -> list[ConditionSet]:
        out = []
        for request in requests:
            self.rendered += 1
            condition_id = hashlib.sha256(repr(request).encode()).hexdigest()[:16]
            depth = np.full((self.height, self.width), int(request.azimuth_deg) % 256, np.uint8)
            normal = np.full((self.height, self.width, 3), self.target_brightness, np.uint8)
            skeleton = np.zeros((self.height, self.width, 3), np.uint8)
            skeleton[:, self.width // 2] = 255
            camera = Camera(elevation_deg=request.elevation_deg, azimuth_deg=request.azimuth_deg, distance_m=3.0,
                            fov_deg=30.0, width=self.width, height=self.height,
                            K=[[100.0, 0, self.width / 2], [0, 100.0, self.height / 2], [0, 0, 1]],
                            R=np.eye(3).tolist(), t=[0.0, 0.0, 3.0])
            body = BodyParams(model="double", pose_id=request.pose_id, pose=[0.0] * 72, shape=[])
            out.append(ConditionSet(condition_id=condition_id, depth=depth, normal=normal, skeleton=skeleton,
                                    keypoints_2d=np.zeros((18, 3), np.float32), camera=camera, body=body))
        return out


class DoubleEstimator:
    name = "brightness-double"

    def estimate(self, images: Sequence[np.ndarray]) -> list[PoseEstimate]:
        out = []
        for image in images:
            gray = np.asarray(image, dtype=np.float32)
            gray = gray.mean(axis=2) if gray.ndim == 3 else gray
            bands = np.array_split(gray, 17, axis=0)
            conf = np.array([band.mean() / 255.0 for band in bands], dtype=np.float32)
            keypoints = np.zeros((17, 3), np.float32)
            keypoints[:, 2] = conf
            out.append(PoseEstimate(keypoints=keypoints, person_found=bool(conf.max() > 0)))
        return out


class DoubleGenerator:
    """Brightness depends on the seed alone, so about a third of the attempts fail eqs. 12-13."""

    def __init__(self, delay_s: float = 0.0, width: int = WIDTH, height: int = HEIGHT):
        self.delay_s, self.width, self.height = delay_s, width, height
        self.calls = 0
        self.info = GeneratorInfo(id="tests/double-generator", revision=None, sha256="0" * 64,
                                  description="test double: a seeded brightness pattern, not a model")

    identity_encoder = "pixels-double"

    def identity_features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Centred grey pixels of an 8x16 thumbnail: a cheap feature whose cosine follows the reference's pattern."""
        grey = [np.asarray(image.convert("L").resize((8, 16)), np.float32).ravel() for image in images]
        return np.stack([g - g.mean() for g in grey])

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        self.calls += 1
        out = []
        for request in requests:
            time.sleep(self.delay_s)
            rng = np.random.default_rng(request.seed)
            brightness = 140 + int(rng.integers(0, 110))
            reference = np.asarray(request.reference.convert("RGB").resize((self.width, self.height)), np.float32)
            image = 0.2 * reference + 0.8 * brightness + rng.normal(0, 2, reference.shape)
            out.append(Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)))
        return out


class WaitingGenerator(DoubleGenerator):
    """Generates its first batch at once and every later one only once ``flag`` exists: a build that
    sends its progress only at the end of a shard never finishes a shard of two batches or more."""

    def __init__(self, flag: Path, timeout_s: float = 60.0):
        super().__init__()
        self.flag, self.timeout_s = Path(flag), timeout_s

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        deadline = time.monotonic() + self.timeout_s
        while self.calls and not self.flag.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.flag} never appeared: no progress event reached the driver mid-shard")
            time.sleep(0.02)
        return super().generate(requests)


def double_stages(delay_s: float = 0.0):
    from posedive.builder import BuildStages

    return BuildStages(conditions=DoubleRenderer(), estimator=DoubleEstimator(), generator=DoubleGenerator(delay_s))


class SeedRecordingGenerator(DoubleGenerator):
    """A ``DoubleGenerator`` that remembers the seed of every image it generated: which attempts a
    build really generated (and which it took from files an earlier run left)."""

    def __init__(self, delay_s: float = 0.0):
        super().__init__(delay_s)
        self.seeds: list[int] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        self.seeds += [request.seed for request in requests]
        return super().generate(requests)


class StagesWithRecipeReid:
    """The doubles plus the Re-ID encoder the recipe names (``quality.reid_encoder``), made in each worker."""

    def __init__(self, recipe) -> None:
        self.recipe = recipe

    def __call__(self):
        import dataclasses

        from posedive.builder.stages import load_reid

        return dataclasses.replace(double_stages(), reid=load_reid(self.recipe))


class BatchSensitiveGenerator(DoubleGenerator):
    """Like ``DoubleGenerator``, but every image's brightness shifts with the size of the batch it came
    in, as a generator whose last bits depend on the batch would: two builds agree only if they send
    the generator the same batches."""

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        images = super().generate(requests)
        return [Image.fromarray(np.clip(np.asarray(image, np.int16) + len(requests), 0, 255).astype(np.uint8))
                for image in images]


def batch_sensitive_stages(delay_s: float = 0.0):
    from posedive.builder import BuildStages

    return BuildStages(conditions=DoubleRenderer(), estimator=DoubleEstimator(),
                       generator=BatchSensitiveGenerator(delay_s))


class PidRecordingRenderer(DoubleRenderer):
    """Leaves a file named after its process in ``folder`` each time it renders: which workers built."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = Path(folder)

    def render(self, requests: Sequence[ConditionRequest]) -> list[ConditionSet]:
        import os

        (self.folder / f"rendered-by-{os.getpid()}").touch()
        return super().render(requests)


class PidRecordingStages:
    """Batch-sensitive double stages whose renderer records the processes that render."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def __call__(self):
        from posedive.builder import BuildStages

        return BuildStages(conditions=PidRecordingRenderer(self.folder), estimator=DoubleEstimator(),
                           generator=BatchSensitiveGenerator())


def _check_threads(expected: int, who: str) -> None:
    """Fail (so the build fails) unless this worker runs ``expected`` threads in torch and OpenMP."""
    import os

    import torch

    seen = (torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS"))
    if seen != (expected, str(expected)):
        raise RuntimeError(f"{who} runs torch threads / OMP_NUM_THREADS {seen}, not the {expected} CPU(s) it reserves")


def stages_checking_threads(expected: int):
    """``double_stages`` made in a worker that must run ``expected`` threads."""
    _check_threads(expected, "shard worker")
    return double_stages()


def generator_checking_threads(expected: int):
    """A ``DoubleGenerator`` made in a generation actor that must run ``expected`` threads."""
    _check_threads(expected, "generation actor")
    return DoubleGenerator()
