"""Video -> clean person tracks: detection, tracking, stitching and the track filter in one pass.

The result (``VideoTracks``) is everything later steps need: for each kept track its clean detections,
so the Market-layout writer and the pair writer pick frames from the same tracks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .crops import CropConfig, TrackFilterConfig, clean_detections, keep_track, typical_looking
from .detection import BackgroundSubtractionDetector, Detection, DetectorConfig, iter_frames, video_info
from .tracking import IouTracker, StitchConfig, Track, TrackerConfig, appearance, split_on_appearance, stitch_tracks

logger = logging.getLogger(__name__)


class VideoConfig(BaseModel):
    """Every setting of the video pipeline; its JSON goes next to the outputs for provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    stitch: StitchConfig = Field(default_factory=StitchConfig)
    crop: CropConfig = Field(default_factory=CropConfig)
    track_filter: TrackFilterConfig = Field(default_factory=TrackFilterConfig)


@dataclass
class VideoTracks:
    video: Path
    frame_count: int
    fps: float
    frame_size: tuple[int, int]
    tracks: list[Track]  # every track after stitching
    kept: dict[int, list[Detection]]  # track id -> clean detections of the kept tracks
    looks: dict[tuple[int, tuple[int, int, int, int]], np.ndarray]  # (frame, box) -> appearance
    detections: dict[int, list[Detection]]  # frame -> every detection, tracked or not

    def track(self, track_id: int) -> Track:
        return next(t for t in self.tracks if t.track_id == track_id)


def _signature(detections: list[Detection], looks: dict[tuple[int, tuple[int, int, int, int]], np.ndarray]) -> np.ndarray:
    return np.mean([looks[(d.frame, d.box)] for d in detections], axis=0)


def extract_tracks(
    video: Path, config: VideoConfig | None = None, progress: bool = True, max_frames: int | None = None
) -> VideoTracks:
    """Detect and track every person in a fixed-camera video and keep the tracks clean enough for Re-ID.

    ``max_frames`` stops after that many frames (the background model still sees the whole video).
    """
    config = config or VideoConfig()
    frame_count, fps, frame_size = video_info(video)
    if max_frames is not None:
        frame_count = min(frame_count, max_frames)
    detector = BackgroundSubtractionDetector.for_video(video, config.detector)
    tracker = IouTracker(config.tracker)
    looks: dict[tuple[int, tuple[int, int, int, int]], np.ndarray] = {}
    by_frame: dict[int, list[Detection]] = {}
    columns = (TextColumn("[bold]tracking"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("frames", total=frame_count)
        for index, frame in iter_frames(video):
            if index >= frame_count:
                break
            detections = detector.detect(index, frame)
            by_frame[index] = detections
            for d in detections:
                x0, y0, x1, y1 = d.box
                looks[(index, d.box)] = appearance(frame[y0:y1, x0:x1])
            tracker.update(index, detections)
            bar.advance(task)
    fragments = tracker.finish()

    signatures: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for track in fragments:
        clean = clean_detections(track, frame_size, config.crop, by_frame)
        if clean:
            signatures[track.track_id] = (_signature(clean[:5], looks), _signature(clean[-5:], looks))
    tracks = split_on_appearance(stitch_tracks(fragments, signatures, config.stitch), looks, config.stitch)
    kept: dict[int, list[Detection]] = {}
    for track in tracks:
        clean = typical_looking(clean_detections(track, frame_size, config.crop, by_frame), looks, config.crop)
        if keep_track(clean, config.track_filter):
            kept[track.track_id] = clean
    logger.info(
        "%s: %d frames, %d detections, %d track fragments, %d tracks after stitching, %d kept",
        video, frame_count, len(looks), len(fragments), len(tracks), len(kept),
    )
    return VideoTracks(
        video=video,
        frame_count=frame_count,
        fps=fps,
        frame_size=frame_size,
        tracks=tracks,
        kept=kept,
        looks=looks,
        detections=by_frame,
    )
