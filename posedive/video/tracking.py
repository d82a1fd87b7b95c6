"""Multi-object tracking of person boxes: SORT-style association (constant velocity + Hungarian on IoU).

The maintained trackers named for this job cannot be installed beside posedive's stack: ``supervision``
0.31 no longer ships ByteTrack, Roboflow's ``trackers`` pulls ``opencv-python`` (whose ``cv2`` would
overwrite the ``opencv-contrib-python`` that mediapipe needs) and ``norfair`` 2.3 requires numpy < 2
(pyarrow needs numpy >= 2). ByteTrack's second, low-score association stage has nothing to work on
here anyway: background subtraction gives no scores. What remains of SORT/ByteTrack is what this module
implements with scipy's ``linear_sum_assignment``: predict each live track one frame ahead with its
velocity, match predictions to detections by maximum total IoU above a threshold, keep unmatched tracks
alive for ``max_age`` frames, start a track from every unmatched detection.

Occlusions are where trackers swap identities, and one swap puts two people under one Re-ID label. So
a detection that overlaps the predictions of two tracks (two people merging into one blob) ends both
tracks instead of guessing, and the detection is flagged ``crowded``; fragments of one person are then
joined again only when their appearance and motion agree (``stitch_tracks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .detection import Detection, box_iou


class TrackerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_iou: float = Field(0.2, gt=0, lt=1, description="smallest IoU between prediction and detection to match")
    max_age: int = Field(8, ge=0, description="frames a track survives without a detection")
    crowd_iou: float = Field(0.05, ge=0, lt=1, description="IoU with a second track that makes a detection crowded")
    velocity_smoothing: float = Field(0.6, ge=0, lt=1, description="weight of the old velocity in its update")


@dataclass
class Track:
    """One tracked pedestrian: its detections in frame order."""

    track_id: int
    detections: list[Detection] = field(default_factory=list)
    crowded: set[int] = field(default_factory=set)  # frames whose box touched another person
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    missed: int = 0

    @property
    def first_frame(self) -> int:
        return self.detections[0].frame

    @property
    def last_frame(self) -> int:
        return self.detections[-1].frame

    @property
    def last_box(self) -> np.ndarray:
        return np.asarray(self.detections[-1].box, dtype=np.float64)

    def predicted_box(self, frame: int) -> np.ndarray:
        return self.last_box + self.velocity * (frame - self.last_frame)

    def add(self, detection: Detection, smoothing: float) -> None:
        if self.detections:
            step = max(detection.frame - self.last_frame, 1)
            observed = (np.asarray(detection.box, dtype=np.float64) - self.last_box) / step
            self.velocity = smoothing * self.velocity + (1 - smoothing) * observed
        self.detections.append(detection)
        self.missed = 0


class IouTracker:
    """Feed ``update(detections)`` once per frame in order; ``finish()`` returns every track."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._live: list[Track] = []
        self._done: list[Track] = []
        self._next_id = 0

    def _new_track(self, detection: Detection, crowded: bool) -> None:
        track = Track(track_id=self._next_id)
        self._next_id += 1
        track.add(detection, self.config.velocity_smoothing)
        if crowded:
            track.crowded.add(detection.frame)
        self._live.append(track)

    def update(self, frame: int, detections: list[Detection]) -> None:
        from scipy.optimize import linear_sum_assignment

        config = self.config
        boxes = np.asarray([d.box for d in detections], dtype=np.float64).reshape(-1, 4)
        predictions = np.asarray([t.predicted_box(frame) for t in self._live]).reshape(-1, 4)
        iou = box_iou(predictions, boxes)
        # A detection touching two live tracks is two people in one blob (or about to be).
        touching = (iou > config.crowd_iou).sum(axis=0) if len(self._live) else np.zeros(len(detections), int)
        detection_pairs = box_iou(boxes, boxes)
        np.fill_diagonal(detection_pairs, 0.0)
        near_other = (detection_pairs > 0).any(axis=1) if len(detections) else np.zeros(0, bool)
        crowded = (touching >= 2) | near_other

        matched_tracks: set[int] = set()
        matched_detections: set[int] = set()
        ended: set[int] = set()
        if iou.size:
            rows, cols = linear_sum_assignment(-iou)
            for row, col in zip(rows, cols):
                if iou[row, col] < config.min_iou:
                    continue
                matched_tracks.add(row)
                matched_detections.add(col)
                if touching[col] >= 2:
                    ended.add(row)  # identities are ambiguous from here on: end, do not guess
                    continue
                track = self._live[row]
                track.add(detections[col], config.velocity_smoothing)
                if crowded[col]:
                    track.crowded.add(frame)
            for row in range(len(self._live)):
                if row not in matched_tracks and (iou[row] > config.crowd_iou).any():
                    other = int(np.argmax(iou[row]))
                    if touching[other] >= 2:
                        ended.add(row)

        survivors: list[Track] = []
        for row, track in enumerate(self._live):
            if row in ended:
                self._done.append(track)
                continue
            if row not in matched_tracks:
                track.missed += 1
                if track.missed > config.max_age:
                    self._done.append(track)
                    continue
            survivors.append(track)
        self._live = survivors
        for col, detection in enumerate(detections):
            if col in matched_detections or touching[col] >= 2:
                continue  # matched, or a merged blob that is nobody's detection
            self._new_track(detection, bool(crowded[col]))

    def finish(self) -> list[Track]:
        tracks = self._done + self._live
        self._done, self._live = [], []
        return sorted((t for t in tracks if t.detections), key=lambda t: (t.first_frame, t.detections[0].box))


def appearance(crop_bgr: np.ndarray) -> np.ndarray:
    """Normalised hue-saturation histogram of a person crop (upper and lower body separately)."""
    import cv2

    hsv = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2HSV)
    half = hsv.shape[0] // 2
    parts = []
    for part in (hsv[:half], hsv[half:]):
        hist = cv2.calcHist([part], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
        parts.append(hist / max(hist.sum(), 1e-9))
    return np.concatenate(parts).astype(np.float32)


def appearance_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two ``appearance`` vectors averaged over the two halves (1 = same)."""
    half = len(a) // 2
    return float(np.mean([np.sum(np.sqrt(a[s] * b[s])) for s in (slice(0, half), slice(half, None))]))


class StitchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_gap: int = Field(12, ge=1, description="largest number of frames between two fragments of one person")
    max_distance: float = Field(0.5, gt=0, description="largest gap between predicted and observed position, in person heights")
    min_similarity: float = Field(0.9, gt=0, le=1, description="smallest appearance similarity of the fragments")
    split_similarity: float = Field(
        0.86, gt=0, le=1, description="a track whose two parts look less alike than this is cut in two (an identity switch)"
    )
    split_min_length: int = Field(10, ge=1, description="fewest detections on each side of a cut")


def stitch_tracks(
    tracks: list[Track], signatures: dict[int, tuple[np.ndarray, np.ndarray]], config: StitchConfig | None = None
) -> list[Track]:
    """Join fragments ended by occlusion: B starts after A ends, near where A was heading, looking alike.

    ``signatures[track_id]`` holds the appearance of a track's first and last clean detection. Greedy in
    order of similarity, each fragment joins at most one predecessor and one successor.
    """
    config = config or StitchConfig()
    by_id = {t.track_id: t for t in tracks}
    candidates: list[tuple[float, int, int]] = []
    for a in tracks:
        for b in tracks:
            if a is b or a.track_id not in signatures or b.track_id not in signatures:
                continue
            gap = b.first_frame - a.last_frame
            if not 0 < gap <= config.max_gap:
                continue
            predicted = a.predicted_box(b.first_frame)
            observed = np.asarray(b.detections[0].box, dtype=np.float64)
            height = max(a.detections[-1].height, b.detections[0].height, 1)
            centre_gap = np.linalg.norm((predicted[:2] + predicted[2:]) / 2 - (observed[:2] + observed[2:]) / 2)
            if centre_gap > config.max_distance * height:
                continue
            similarity = appearance_similarity(signatures[a.track_id][1], signatures[b.track_id][0])
            if similarity >= config.min_similarity:
                candidates.append((similarity, a.track_id, b.track_id))
    successor: dict[int, int] = {}
    predecessor: dict[int, int] = {}
    for _, a_id, b_id in sorted(candidates, reverse=True):
        if a_id in successor or b_id in predecessor:
            continue
        successor[a_id] = b_id
        predecessor[b_id] = a_id
    stitched: list[Track] = []
    for track in tracks:
        if track.track_id in predecessor:
            continue
        joined = Track(track_id=track.track_id, detections=list(track.detections), crowded=set(track.crowded))
        current = track.track_id
        while current in successor:
            current = successor[current]
            joined.detections.extend(by_id[current].detections)
            joined.crowded |= by_id[current].crowded
        stitched.append(joined)
    return sorted(stitched, key=lambda t: (t.first_frame, t.detections[0].box))


def split_on_appearance(
    tracks: list[Track], looks: dict[tuple[int, tuple[int, int, int, int]], np.ndarray], config: StitchConfig | None = None
) -> list[Track]:
    """Cut tracks where the appearance changes: an identity switch the IoU association did not see.

    For every cut point the mean appearance before and after are compared; the least similar cut below
    ``split_similarity`` is made and both parts are checked again. New parts get fresh track ids.
    """
    config = config or StitchConfig()
    next_id = max((t.track_id for t in tracks), default=-1) + 1
    pending = list(tracks)
    result: list[Track] = []
    while pending:
        track = pending.pop()
        n = len(track.detections)
        vectors = np.stack([looks[(d.frame, d.box)] for d in track.detections]) if n else np.zeros((0, 1))
        best, best_cut = 1.0, None
        cumulative = np.cumsum(vectors, axis=0)
        for cut in range(config.split_min_length, n - config.split_min_length + 1):
            before = cumulative[cut - 1] / cut
            after = (cumulative[-1] - cumulative[cut - 1]) / (n - cut)
            similarity = appearance_similarity(before, after)
            if similarity < best:
                best, best_cut = similarity, cut
        if best_cut is None or best >= config.split_similarity:
            result.append(track)
            continue
        head = Track(track_id=track.track_id, detections=track.detections[:best_cut])
        tail = Track(track_id=next_id, detections=track.detections[best_cut:])
        next_id += 1
        for part in (head, tail):
            frames = {d.frame for d in part.detections}
            part.crowded = {f for f in track.crowded if f in frames}
            pending.append(part)
    return sorted(result, key=lambda t: (t.first_frame, t.detections[0].box))
