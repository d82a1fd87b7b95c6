"""What lands on disk about tracks: ``tracks.json`` (typed, so other tools can read it back)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ..errors import FormatError, PathNotFound
from .extract import VideoTracks


class DetectionRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame: int
    box: tuple[int, int, int, int]
    clean: bool


class TrackRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    track_id: int
    kept: bool
    detections: list[DetectionRecord]


class TracksFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: str
    frame_count: int
    fps: float
    frame_size: tuple[int, int]
    tracks: list[TrackRecord]


def write_tracks(tracks: VideoTracks, path: Path) -> Path:
    records = []
    for track in tracks.tracks:
        clean = {(d.frame, d.box) for d in tracks.kept.get(track.track_id, [])}
        records.append(
            TrackRecord(
                track_id=track.track_id,
                kept=track.track_id in tracks.kept,
                detections=[DetectionRecord(frame=d.frame, box=d.box, clean=(d.frame, d.box) in clean) for d in track.detections],
            )
        )
    data = TracksFile(
        video=Path(tracks.video).name, frame_count=tracks.frame_count, fps=tracks.fps, frame_size=tracks.frame_size, tracks=records
    )
    path.write_text(data.model_dump_json(indent=1) + "\n")
    return path


def read_tracks(path: Path) -> TracksFile:
    if not path.is_file():
        raise PathNotFound(f"{path}: tracks file not found", hint="write it with `posedive pairs VIDEO --out DIR`")
    try:
        return TracksFile.model_validate_json(path.read_text())
    except ValueError as error:
        raise FormatError(f"{path}: not a posedive tracks file: {error}",
                          hint="write it again with `posedive pairs VIDEO --out DIR`") from None
