"""Tracks -> a dataset in the exact Market-1501 layout, readable by posedive's Market-1501 reader.

One kept track is one identity. A fixed camera has one view, so the "cameras" of the layout are time
segments of each track: camera ``c`` holds the ``c``-th third of the track's clean frames. A person
crossing the scene is seen from the front, the side and the back at different places along the way, so
the segments play the part that different cameras play in Market-1501 (and a query always has a match
under another camera). Identities alternate between train and test in order of appearance; each test
identity gives one query per camera and the rest of its crops to the gallery. The gallery also gets a
few distractors (``0000_``: fragments of dropped tracks) and junk files (``-1_``: truncated boxes at the
frame border), as Market-1501's does, so readers see both conventions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..errors import OutputError, PathExists
from .crops import CropConfig, CropRef, aspect_box, extract_crops, spread
from .detection import Detection
from .extract import VideoTracks

logger = logging.getLogger(__name__)

MARKET_SPLIT_FOLDERS = ("bounding_box_train", "bounding_box_test", "query")


class MarketLayoutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cameras: int = Field(3, ge=1, le=9, description="time segments per track, written as camera ids 1..N")
    images_per_identity: int = Field(6, ge=1, description="crops per identity, spread evenly over the track")
    max_identities: int = Field(20, ge=1, description="most identities written (the longest tracks win)")
    window: int = Field(
        80, ge=1, description="frames around the middle of a track that its crops come from (track ends are where identity switches hide)"
    )
    train_every: tuple[int, int] = Field((3, 5), description="(k, n): k identities of every n go to train")
    distractors: int = Field(2, ge=0, description="0000_ distractor files in the gallery")
    junk: int = Field(2, ge=0, description="-1_ junk files in the gallery")
    jpeg_quality: int = Field(90, ge=1, le=100)


@dataclass(frozen=True)
class MarketImage:
    split_folder: str
    pid: int
    camera: int
    ref: CropRef

    @property
    def file_name(self) -> str:
        pid = "-1" if self.pid == -1 else f"{self.pid:04d}"
        return f"{pid}_c{self.camera}s1_{self.ref.detection.frame:06d}_00.jpg"


def camera_of(detection: Detection, clean: list[Detection], cameras: int) -> int:
    """Camera id 1..N: which time segment of the track's clean span the detection falls in."""
    first, last = clean[0].frame, clean[-1].frame
    position = (detection.frame - first) / max(last - first + 1, 1)
    return min(int(position * cameras), cameras - 1) + 1


def plan_market_layout(tracks: VideoTracks, crop: CropConfig, config: MarketLayoutConfig) -> list[MarketImage]:
    """Which crop of which track goes where, under which pid and camera id (pure, deterministic)."""
    # The longest tracks give the most varied views; identities are then numbered in order of appearance.
    ranked = sorted(tracks.kept.items(), key=lambda item: (-len(item[1]), item[0]))[: config.max_identities]
    chosen = sorted(ranked, key=lambda item: (item[1][0].frame, item[0]))
    keep_k, of_n = config.train_every
    images: list[MarketImage] = []
    for index, (track_id, clean) in enumerate(chosen):
        pid = index + 1
        middle = (clean[0].frame + clean[-1].frame) / 2
        clean = [d for d in clean if abs(d.frame - middle) <= config.window / 2]
        train = index % of_n < keep_k
        # Spread the crops over every camera segment, the same number in each.
        per_camera = max(1, config.images_per_identity // config.cameras)
        for camera in range(1, config.cameras + 1):
            segment = [d for d in clean if camera_of(d, clean, config.cameras) == camera]
            for rank, detection in enumerate(spread(segment, per_camera)):
                ref = CropRef(track_id, detection, aspect_box(detection.box, crop.aspect, crop.margin))
                if train:
                    folder = "bounding_box_train"
                else:
                    folder = "query" if rank == 0 else "bounding_box_test"
                images.append(MarketImage(folder, pid, camera, ref))
    images += _gallery_noise(tracks, crop, config)
    return images


def _gallery_noise(tracks: VideoTracks, crop: CropConfig, config: MarketLayoutConfig) -> list[MarketImage]:
    width, height = tracks.frame_size
    dropped = [t for t in tracks.tracks if t.track_id not in tracks.kept]
    # Distractors: the largest detection of each of the longest dropped tracks (a person seen briefly or
    # only in a crowd, who has no identity in the dataset).
    distractors: list[MarketImage] = []
    for track in sorted(dropped, key=lambda t: (-len(t.detections), t.track_id))[: config.distractors]:
        detection = max(track.detections, key=lambda d: (d.height, -d.frame))
        ref = CropRef(track.track_id, detection, aspect_box(detection.box, crop.aspect, crop.margin))
        distractors.append(MarketImage("bounding_box_test", 0, 1, ref))
    # Junk: boxes cut by the frame border (only part of a person is visible).
    cut_off: list[tuple[Detection, int]] = []
    for track in tracks.tracks:
        for detection in track.detections:
            x0, y0, x1, y1 = detection.box
            if x0 <= 0 or y0 <= 0 or x1 >= width or y1 >= height:
                cut_off.append((detection, track.track_id))
    cut_off.sort(key=lambda item: (-item[0].height, item[0].frame))
    junk: list[MarketImage] = []
    seen_tracks: set[int] = set()
    for detection, track_id in cut_off:
        if len(junk) == config.junk:
            break
        if track_id in seen_tracks:
            continue
        seen_tracks.add(track_id)
        ref = CropRef(track_id, detection, aspect_box(detection.box, crop.aspect, crop.margin))
        junk.append(MarketImage("bounding_box_test", -1, 1, ref))
    return distractors + junk


def write_market_layout(tracks: VideoTracks, out: Path, crop: CropConfig, config: MarketLayoutConfig) -> list[MarketImage]:
    """Write the crops as ``out/{bounding_box_train,bounding_box_test,query}/*.jpg``; returns the plan.

    Refuses a folder that already holds Market-layout images, so a rerun never mixes two extractions.
    """
    import cv2

    out = Path(out)
    for folder in MARKET_SPLIT_FOLDERS:
        existing = sorted((out / folder).glob("*.jpg"))
        if existing:
            raise PathExists(f"{out / folder}: already holds {len(existing)} images",
                             hint="choose an empty folder (posedive never mixes two extractions)")
    images = plan_market_layout(tracks, crop, config)
    crops = extract_crops(tracks.video, [image.ref for image in images], crop.size)
    for folder in MARKET_SPLIT_FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)
    for image in images:
        path = out / image.split_folder / image.file_name
        if not cv2.imwrite(str(path), crops[image.ref], [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]):
            raise OutputError(f"{path}: OpenCV could not write the crop", hint="check that the folder is writable")
    logger.info("wrote %d Market-layout images to %s", len(images), out)
    return images
