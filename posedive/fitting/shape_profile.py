"""A person's silhouette as a width profile: the descriptor body-shape estimation compares.

The frame comes from the keypoints: the body axis runs from the hips' midpoint to the shoulders'
midpoint, and a ladder of rungs perpendicular to it (``silhouette.Ladder``) spans the whole person,
feet to head, each rung ``RUNG_WINDOW`` torso lengths either side of the axis. The covered length of
every rung is its width (arms beside the torso and both legs add up). The topmost and lowest
non-empty rungs give the silhouette's extent along the axis, its *stature* in pixels; the profile is
the mean width of the rungs in each of ``bins`` equal slices of that extent, divided by the
stature. So the profile is scale-free (a Re-ID crop fixes no metric scale) and reads the same from
a person's segmentation mask and from a body model's projected mesh: for the model, the rungs come
from the model's own keypoints, so an imperfectly fitted pose still puts each rung at the same
place on the body.

What the profile sees: the relative width of head, shoulders, chest, waist, hips, thighs and calves,
and where along the body they sit (a taller anny body has a relatively smaller head and longer legs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..schema import COCO17_KEYPOINTS
from .silhouette import Ladder, mask_widths, mesh_widths

KEYPOINT = {name: index for index, name in enumerate(COCO17_KEYPOINTS)}
TORSO = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
# Keypoints that place the body model's projection onto the image (2D scale and shift).
ALIGNMENT = TORSO + ("left_knee", "right_knee", "left_ankle", "right_ankle")
# The ladder, in torso lengths from the torso's midpoint: down to the feet, up over the head, across.
RUNGS_BELOW, RUNGS_ABOVE, RUNG_WINDOW = 3.6, 2.6, 1.5
RUNGS_PER_TORSO = 25
MIN_RUNG_WIDTH_PX = 0.25


@dataclass(frozen=True)
class BodyFrame:
    """The torso's midpoint, the unit axis from the hips to the shoulders, and the torso length (px)."""

    origin: np.ndarray
    axis: np.ndarray
    torso_px: float

    def ladder(self) -> Ladder:
        spacing = self.torso_px / RUNGS_PER_TORSO
        offsets = np.arange(-RUNGS_BELOW * RUNGS_PER_TORSO, RUNGS_ABOVE * RUNGS_PER_TORSO + 1) * spacing
        return Ladder(self.origin, self.axis, offsets, RUNG_WINDOW * self.torso_px)


def body_frame(keypoints: np.ndarray, min_confidence: float = 0.0) -> BodyFrame | None:
    """The frame of (17, 3) COCO-17 keypoints (x, y, confidence); None when a torso keypoint is
    below ``min_confidence`` or the torso has no length."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    torso = keypoints[[KEYPOINT[name] for name in TORSO]]
    if torso[:, 2].min() < min_confidence:
        return None
    hips = torso[2:, :2].mean(axis=0)
    shoulders = torso[:2, :2].mean(axis=0)
    length = float(np.linalg.norm(shoulders - hips))
    if not length > 1.0:
        return None
    return BodyFrame(origin=(hips + shoulders) / 2, axis=(shoulders - hips) / length, torso_px=length)


def profile_from_widths(widths: np.ndarray, ladder: Ladder, bins: int) -> tuple[np.ndarray, float]:
    """(bins,) widths / stature from feet (first) to head (last), NaN for empty slices; and the
    stature in pixels (NaN when the ladder saw nothing)."""
    offsets = ladder.offsets
    seen = np.flatnonzero(widths > MIN_RUNG_WIDTH_PX)
    if seen.size < 2:
        return np.full(bins, np.nan), float("nan")
    half = 0.5 * (offsets[1] - offsets[0])
    bottom, top = offsets[seen[0]] - half, offsets[seen[-1]] + half
    stature = float(top - bottom)
    slice_of = np.minimum(((offsets - bottom) / stature * bins).astype(np.int64), bins - 1)
    inside = (offsets >= bottom) & (offsets <= top)
    sums = np.bincount(slice_of[inside], weights=widths[inside], minlength=bins)
    counts = np.bincount(slice_of[inside], minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan) / stature
    return profile, stature


def mask_profile(mask: np.ndarray, keypoints: np.ndarray, bins: int) -> tuple[np.ndarray, float]:
    """The profile of a soft person mask, on the frame of the image's keypoints."""
    frame = body_frame(keypoints)
    if frame is None:
        return np.full(bins, np.nan), float("nan")
    ladder = frame.ladder()
    return profile_from_widths(mask_widths(mask, ladder), ladder, bins)


def align_to(model_keypoints: np.ndarray, image_keypoints: np.ndarray) -> tuple[float, np.ndarray]:
    """Scale and shift ``(s, t)`` minimising the confidence-weighted ``|s * model + t - image|^2`` over
    the alignment keypoints: where the model's projection lands on the image, so both are clipped by
    the same crop border."""
    rows = [KEYPOINT[name] for name in ALIGNMENT]
    source = np.asarray(model_keypoints, dtype=np.float64)[rows, :2]
    target = np.asarray(image_keypoints, dtype=np.float64)[rows, :2]
    weight = np.maximum(np.asarray(image_keypoints, dtype=np.float64)[rows, 2], 1e-3)
    weight = weight / weight.sum()
    mean_s, mean_t = weight @ source, weight @ target
    a, b = source - mean_s, target - mean_t
    scale = float((weight * (a * b).sum(axis=1)).sum() / max((weight * (a * a).sum(axis=1)).sum(), 1e-12))
    return scale, mean_t - scale * mean_s


def mesh_profile(
    pixels: np.ndarray,
    faces: np.ndarray,
    keypoints: np.ndarray,
    image_keypoints: np.ndarray,
    width: int,
    height: int,
    bins: int,
) -> tuple[np.ndarray, float]:
    """The profile of a projected mesh (vertices at ``pixels``, its COCO-17 keypoints at ``keypoints``,
    both (N, 2) pixels), aligned onto the image's keypoints first."""
    scale, shift = align_to(keypoints, image_keypoints)
    pixels = np.asarray(pixels, dtype=np.float64) * scale + shift
    placed = np.concatenate(
        [np.asarray(keypoints, dtype=np.float64)[:, :2] * scale + shift, np.ones((len(keypoints), 1))], axis=1
    )
    frame = body_frame(placed)
    if frame is None:
        return np.full(bins, np.nan), float("nan")
    ladder = frame.ladder()
    return profile_from_widths(mesh_widths(pixels, faces, ladder, width, height), ladder, bins)


__all__ = ["BodyFrame", "align_to", "body_frame", "mask_profile", "mesh_profile", "profile_from_widths"]
