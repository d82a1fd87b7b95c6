"""BlazePose's 33 landmarks -> the points the fitter uses, as one typed observation per image.

The estimator is ``posedive.pose.blazepose.BlazePoseEstimator`` (its ``analyse`` returns the 33 image
landmarks with visibility and the 33 world landmarks); this module only selects and orders the 19
landmarks that have a counterpart on the body model (``FIT_POINTS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..pose.keypoints import BLAZEPOSE33_KEYPOINTS
from .skeleton import FIT_POINTS

FIT_FROM_BLAZEPOSE: tuple[int, ...] = tuple(BLAZEPOSE33_KEYPOINTS.index(name) for name in FIT_POINTS)


@dataclass(frozen=True)
class Observation:
    """What the fitter sees of one image: ``keypoints`` (P, 3) x, y pixels and visibility in [0, 1];
    ``world`` (P, 3) metres, hip-centred, camera axes (x right, y down, z away), or None."""

    keypoints: np.ndarray
    world: np.ndarray | None
    width: int
    height: int

    @property
    def found(self) -> bool:
        return bool(self.keypoints[:, 2].max() > 0)

    @classmethod
    def empty(cls, width: int, height: int) -> "Observation":
        return cls(np.zeros((len(FIT_POINTS), 3), np.float32), None, int(width), int(height))


def observation_from_blazepose(landmarks: np.ndarray | None, world: np.ndarray | None, width: int, height: int) -> Observation:
    """(33, 4) image landmarks (x, y, z, visibility) and (33, 3) world landmarks -> an Observation."""
    if landmarks is None:
        return Observation.empty(width, height)
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if landmarks.shape != (len(BLAZEPOSE33_KEYPOINTS), 4):
        raise ValueError(f"expected (33, 4) BlazePose landmarks, got shape {landmarks.shape}")
    picked = landmarks[list(FIT_FROM_BLAZEPOSE)]
    keypoints = np.concatenate([picked[:, :2], np.clip(picked[:, 3:4], 0.0, 1.0)], axis=1)
    points_3d = None if world is None else np.asarray(world, dtype=np.float32)[list(FIT_FROM_BLAZEPOSE)]
    return Observation(keypoints=keypoints, world=points_3d, width=int(width), height=int(height))


def observe(images: Sequence[np.ndarray], estimator=None) -> list[Observation]:
    """Run BlazePose on RGB uint8 images (one person each) and return their observations."""
    from ..pose.blazepose import BlazePoseEstimator

    owned = estimator is None
    estimator = estimator or BlazePoseEstimator()
    try:
        results = estimator.analyse(list(images))
    finally:
        if owned:
            estimator.close()
    return [
        observation_from_blazepose(r.landmarks, r.world_landmarks, image.shape[1], image.shape[0])
        for r, image in zip(results, images)
    ]
