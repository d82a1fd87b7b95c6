"""What every pose estimator answers (``PoseEstimate``) and the protocol it implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..schema import COCO17_KEYPOINTS


@dataclass(frozen=True)
class PoseEstimate:
    """A 2D pose estimator's answer for one image, in COCO-17 order."""

    keypoints: np.ndarray  # (17, 3): x, y in pixels, confidence in [0, 1]
    person_found: bool

    @property
    def confidences(self) -> np.ndarray:
        return self.keypoints[:, 2]

    @classmethod
    def nobody(cls) -> "PoseEstimate":
        return cls(keypoints=np.zeros((len(COCO17_KEYPOINTS), 3), dtype=np.float32), person_found=False)


@runtime_checkable
class PoseEstimator(Protocol):
    """Image in, COCO-17 keypoints with confidences out, batched."""

    name: str

    def estimate(self, images: Sequence[np.ndarray]) -> list[PoseEstimate]: ...
