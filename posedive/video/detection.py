"""Offline person detection in fixed-camera video by background subtraction.

On a fixed camera every moving blob of the right size and shape is a pedestrian, and background
subtraction finds people at any distance, orientation and pose, including the small (40-100 px) ones
that OpenCV's HOG people detector misses (HOG is trained on 64x128 upright windows and needs people at
least that tall). The detector therefore runs OpenCV's MOG2 mixture-of-Gaussians background model,
removes its shadow label, cleans the mask with morphology and reads boxes off the connected components.
The MOG2 model is primed with the median of frames sampled over the whole video, so people standing
in the first frames are not learnt as background.

HOG is kept as ``detect_hog`` so that both detectors can be measured on the same hand-labelled boxes
(``tests/test_video_detection.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError

if TYPE_CHECKING:
    import cv2

logger = logging.getLogger(__name__)


class VideoError(InputError):
    """A video that cannot be read; the message names the file."""


class DetectorConfig(BaseModel):
    """Background-subtraction detector settings (defaults suit a static camera at PAL resolution)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    history: int = Field(300, ge=1, description="MOG2 history length in frames")
    var_threshold: float = Field(24.0, gt=0, description="MOG2 squared Mahalanobis distance threshold")
    shadow_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="MOG2 shadow tau: only pixels darkened by less than this are shadow (dark clothes on grey asphalt are not)",
    )
    background_samples: int = Field(60, ge=1, description="frames whose median primes the background")
    open_kernel: int = Field(5, ge=1, description="opening kernel (px): removes speckle")
    close_kernel: tuple[int, int] = Field((7, 15), description="closing kernel (w, h px): joins limbs to the body")
    min_height: int = Field(36, ge=1, description="smallest person height kept (px)")
    min_area: int = Field(250, ge=1, description="smallest blob area kept (px)")
    min_aspect: float = Field(1.2, gt=0, description="smallest height / width of a person box")
    max_aspect: float = Field(5.0, gt=0, description="largest height / width of a person box")


@dataclass(frozen=True)
class Detection:
    """A person box in one frame, ``x0, y0, x1, y1`` in pixels (exclusive right/bottom edge)."""

    frame: int
    box: tuple[int, int, int, int]
    fill: float  # fraction of the box covered by foreground pixels

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]


def open_video(path: Path) -> "cv2.VideoCapture":
    import cv2

    if not Path(path).is_file():
        raise VideoError(f"{path}: video file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this video")
    return capture


def video_info(path: Path) -> tuple[int, float, tuple[int, int]]:
    """Frame count, frames per second and (width, height) of a video."""
    import cv2

    capture = open_video(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        capture.release()
    return count, fps, size


def iter_frames(path: Path, frames: set[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, BGR frame)`` in order; with ``frames`` only those indices are decoded."""
    capture = open_video(path)
    last = max(frames) if frames else None
    index = 0
    try:
        while True:
            if frames is not None and index not in frames:
                if last is not None and index > last:
                    return
                if not capture.grab():
                    return
            else:
                ok, frame = capture.read()
                if not ok:
                    return
                yield index, frame
            index += 1
    finally:
        capture.release()


def median_background(path: Path, samples: int) -> np.ndarray:
    """Median of ``samples`` frames spread over the video: the empty scene on a fixed camera."""
    count, _, _ = video_info(path)
    if count <= 0:
        raise VideoError(f"{path}: the video reports no frames")
    wanted = {int(i) for i in np.linspace(0, count - 1, min(samples, count)).round()}
    stack = [frame for _, frame in iter_frames(path, wanted)]
    if not stack:
        raise VideoError(f"{path}: no frame could be decoded")
    return np.median(np.stack(stack), axis=0).astype(np.uint8)


class BackgroundSubtractionDetector:
    """MOG2 foreground -> morphology -> connected components -> person-shaped boxes, frame by frame.

    Call ``detect`` on consecutive frames of one video (the background model learns as it goes).
    """

    def __init__(self, background: np.ndarray, config: DetectorConfig | None = None) -> None:
        import cv2

        self.config = config or DetectorConfig()
        self._cv2 = cv2
        self._subtractor = cv2.createBackgroundSubtractorMOG2(
            history=self.config.history, varThreshold=self.config.var_threshold, detectShadows=True
        )
        self._subtractor.setShadowThreshold(self.config.shadow_threshold)
        # A few updates at MOG2's own learning rate; forcing learningRate=1 leaves degenerate mixtures
        # that miss most of a person.
        for _ in range(5):
            self._subtractor.apply(background)
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.config.open_kernel,) * 2)
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, tuple(self.config.close_kernel))

    @classmethod
    def for_video(cls, path: Path, config: DetectorConfig | None = None) -> "BackgroundSubtractionDetector":
        config = config or DetectorConfig()
        return cls(median_background(path, config.background_samples), config)

    def foreground(self, frame: np.ndarray) -> np.ndarray:
        """Binary foreground mask (uint8 0/255) with shadows removed and blobs cleaned."""
        cv2 = self._cv2
        mask = self._subtractor.apply(frame)
        mask = np.where(mask == 255, 255, 0).astype(np.uint8)  # MOG2 marks shadows 127
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)

    def detect(self, index: int, frame: np.ndarray) -> list[Detection]:
        cv2 = self._cv2
        config = self.config
        mask = self.foreground(frame)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        detections: list[Detection] = []
        for label in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[label])
            if h < config.min_height or area < config.min_area:
                continue
            if not config.min_aspect <= h / max(w, 1) <= config.max_aspect:
                continue
            detections.append(Detection(frame=index, box=(x, y, x + w, y + h), fill=area / float(w * h)))
        return sorted(detections, key=lambda d: d.box)


def detect_hog(frame: np.ndarray, hit_threshold: float = 0.0) -> list[tuple[int, int, int, int]]:
    """OpenCV's default HOG + linear SVM people detector, boxes ``x0, y0, x1, y1``; for comparison."""
    import cv2

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    # The default window is 64x128 with the person ~96 px tall; upscale so smaller people fit it.
    scale = 2.0
    big = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    rects, _ = hog.detectMultiScale(big, hitThreshold=hit_threshold, winStride=(8, 8), padding=(8, 8), scale=1.05)
    return [
        (int(x / scale), int(y / scale), int((x + w) / scale), int((y + h) / scale)) for x, y, w, h in np.asarray(rects).reshape(-1, 4)
    ]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``(N, 4)`` and ``(M, 4)`` in ``x0, y0, x1, y1`` form -> ``(N, M)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
