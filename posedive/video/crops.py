"""Re-ID crops from tracks: 1:2 boxes, clean-frame selection, and the track filter.

A Re-ID crop is a box of width:height 1:2 centred on the person with a small margin, resized to a fixed
size. Frames where the person touches the image border (truncated) or another person (crowded) make
crops that show part of a person or two people, so they are never selected; tracks with too few clean
frames are dropped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .detection import Detection, iter_frames
from .tracking import Track


class CropConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    aspect: float = Field(0.5, gt=0, description="crop width / height (Re-ID uses 1:2)")
    margin: float = Field(0.1, ge=0, description="extra height above and below the person, as a fraction")
    size: tuple[int, int] = Field((64, 128), description="output crop size (width, height)")
    border: int = Field(3, ge=0, description="a box this close to the frame edge is truncated (px)")
    min_height: int = Field(44, ge=1, description="smallest person height for a crop (px)")
    min_fill: float = Field(0.3, ge=0, le=1, description="smallest foreground fraction of the box")
    max_width_ratio: float = Field(0.62, gt=0, description="widest box (width / height) of one walking person")
    height_tolerance: float = Field(
        0.15, ge=0, description="largest relative gap to the track's median height nearby (a half-detected body or two merged people)"
    )
    height_window: int = Field(15, ge=1, description="frames either side that define the track's nearby height")
    appearance_drop: float = Field(
        0.08, gt=0, le=1,
        description="largest drop of similarity to the track's median appearance below the track's median similarity",
    )
    crowd_window: int = Field(3, ge=0, description="frames either side whose other detections count as company")
    trim: int = Field(3, ge=0, description="clean detections dropped at each end of a track (births and deaths are often merges)")


class TrackFilterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_clean: int = Field(20, ge=1, description="fewest clean (untruncated, uncrowded) frames a kept track has")
    min_span: int = Field(30, ge=1, description="fewest frames between a kept track's first and last clean frame")


@dataclass(frozen=True)
class CropRef:
    """Where one crop comes from: a track's detection in one frame, and its 1:2 box."""

    track_id: int
    detection: Detection
    box: tuple[int, int, int, int]


def aspect_box(box: tuple[int, int, int, int], aspect: float, margin: float) -> tuple[int, int, int, int]:
    """Grow a person box to ``width = aspect * height`` (height grown by ``margin`` top and bottom)."""
    x0, y0, x1, y1 = box
    height = (y1 - y0) * (1 + 2 * margin)
    width = max(height * aspect, x1 - x0)
    height = width / aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (
        int(round(cx - width / 2)),
        int(round(cy - height / 2)),
        int(round(cx + width / 2)),
        int(round(cy + height / 2)),
    )


def crop_is_alone(detection: Detection, others: list[Detection], config: CropConfig) -> bool:
    """No other detected person reaches into the 1:2 crop box (the crop is wider than the person)."""
    x0, y0, x1, y1 = aspect_box(detection.box, config.aspect, config.margin)
    for other in others:
        if other.box == detection.box:
            continue
        ox0, oy0, ox1, oy1 = other.box
        overlap = max(0, min(x1, ox1) - max(x0, ox0)) * max(0, min(y1, oy1) - max(y0, oy0))
        if overlap > 0.02 * other.width * other.height:
            return False
    return True


def is_clean(
    track: Track, detection: Detection, frame_size: tuple[int, int], config: CropConfig, others: list[Detection] = ()
) -> bool:
    """Whole (not touching the border), alone (no one else in its crop), tall and solid enough for a crop.

    The height check compares the box with the track's median height in nearby frames: a box much
    shorter shows part of the body (legs matching the background), a much taller one a merged blob.
    """
    width, height = frame_size
    x0, y0, x1, y1 = detection.box
    inside = x0 >= config.border and y0 >= config.border and x1 <= width - config.border and y1 <= height - config.border
    nearby = [d.height for d in track.detections if abs(d.frame - detection.frame) <= config.height_window]
    typical = float(np.median(nearby))
    return (
        inside
        and detection.frame not in track.crowded
        and detection.height >= config.min_height
        and detection.fill >= config.min_fill
        and detection.width <= config.max_width_ratio * detection.height
        and abs(detection.height - typical) <= config.height_tolerance * typical
        and crop_is_alone(detection, list(others), config)
    )


def clean_detections(
    track: Track, frame_size: tuple[int, int], config: CropConfig, by_frame: dict[int, list[Detection]] | None = None
) -> list[Detection]:
    """The detections of a track that make good crops; ``by_frame`` (every detection) enables the crowd check."""
    by_frame = by_frame or {}
    own = {(d.frame, d.box) for d in track.detections}

    def others(frame: int) -> list[Detection]:
        # Neighbouring frames too: a passer-by's detection flickers, their presence does not.
        near = range(frame - config.crowd_window, frame + config.crowd_window + 1)
        return [o for f in near for o in by_frame.get(f, []) if (o.frame, o.box) not in own]

    return [d for d in track.detections if is_clean(track, d, frame_size, config, others(d.frame))]


def typical_looking(
    detections: list[Detection], looks: dict[tuple[int, tuple[int, int, int, int]], np.ndarray], config: CropConfig
) -> list[Detection]:
    """Drop detections that do not look like the rest of the track: a box that also holds a passer-by,
    a sign post in front of the person, or a merged blob at the start of a track."""
    from .tracking import appearance_similarity

    if not detections:
        return []
    if len(detections) <= 2 * config.trim:
        return []
    detections = detections[config.trim : len(detections) - config.trim]
    median = np.median(np.stack([looks[(d.frame, d.box)] for d in detections]), axis=0)
    similarity = np.array([appearance_similarity(looks[(d.frame, d.box)], median) for d in detections])
    floor = float(np.median(similarity)) - config.appearance_drop
    return [d for d, s in zip(detections, similarity) if s >= floor]


def keep_track(clean: list[Detection], config: TrackFilterConfig) -> bool:
    return len(clean) >= config.min_clean and clean[-1].frame - clean[0].frame >= config.min_span


def spread(detections: list[Detection], count: int) -> list[Detection]:
    """``count`` detections evenly spaced in time (all of them when there are fewer)."""
    if len(detections) <= count:
        return list(detections)
    picks = np.linspace(0, len(detections) - 1, count).round().astype(int)
    return [detections[i] for i in sorted(set(picks.tolist()))]


def cut(frame: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop ``box`` (may reach outside the frame: replicated border) and resize to ``size`` (w, h)."""
    import cv2

    x0, y0, x1, y1 = box
    height, width = frame.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return cv2.resize(frame[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)


def extract_crops(video: Path, refs: list[CropRef], size: tuple[int, int]) -> dict[CropRef, np.ndarray]:
    """Decode only the frames the crops need and cut them (BGR arrays, keyed by their reference)."""
    wanted: dict[int, list[CropRef]] = defaultdict(list)
    for ref in refs:
        wanted[ref.detection.frame].append(ref)
    crops: dict[CropRef, np.ndarray] = {}
    if not wanted:
        return crops
    for index, frame in iter_frames(video, set(wanted)):
        for ref in wanted.get(index, []):
            crops[ref] = cut(frame, ref.box, size)
    return crops
