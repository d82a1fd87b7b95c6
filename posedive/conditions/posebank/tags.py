"""What a bank's poses are: tags that come with the bank, and tags measured on the posed skeleton.

A bank stores, per pose, the tags of its clip (the built-in banks tag theirs: ``walk``, ``dance``,
``acrobatics``, ...; imported banks have none) and three measurements of the posed SMPL rest skeleton
in posedive's y-up world (``GEOMETRY``):

* ``torso_tilt_deg``: the angle between the pelvis-to-neck direction and vertical;
* ``feet_below_hips_m``: how far the highest ankle or toe lies below the lower hip joint (negative
  when a foot is at or above hip height);
* ``head_above_pelvis_m``: the height of the head joint over the pelvis.

A fourth, ``hip_height_ratio`` (the hips' height over the lower foot as a fraction of the rest
pose's), is measured when a selection asks for it: it tells a crouch from standing. So are the legs'
angles from straight down (``leg_lift_deg``): the thigh's (hip to knee; a knee raised) and the
shin's (knee to ankle; a foot folded up behind the knee, as in running's swing).

The geometric tags follow from those measurements, for every bank: ``upright`` (torso within
``UPRIGHT_TORSO_TILT_DEG`` of vertical, both feet below the hips, head above the pelvis), ``leaning``,
``horizontal`` and ``upside_down`` by torso tilt, ``foot_raised`` and ``head_below_pelvis``.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from ...geometry.rotations import SMPL_JOINTS, smpl_skeleton
from ...recipe import UPRIGHT_TORSO_TILT_DEG

GEOMETRY: tuple[str, ...] = ("torso_tilt_deg", "feet_below_hips_m", "head_above_pelvis_m")
TILT, FEET, HEAD = range(len(GEOMETRY))
GEOMETRIC_TAGS: tuple[str, ...] = ("upright", "leaning", "horizontal", "upside_down", "foot_raised",
                                   "head_below_pelvis")
# The tags posedive's built-in banks give their poses. A recipe may name any of them (and any clip or
# tag of its bank): a bank without such poses simply keeps or drops none for it.
ACTIVITY_TAGS: tuple[str, ...] = ("walk", "run", "stand", "turn", "head_turn", "carry", "phone", "dance", "jump",
                                  "kick", "punch", "martial", "acrobatics", "floor", "getup")
# The tag a pose is shown by in plots: the first of these it has, its activity (most unusual first)
# before details such as what the hands hold.
SHOWN_TAGS: tuple[str, ...] = ("acrobatics", "floor", "martial", "dance", "jump", "run", "walk", "stand", "turn",
                               "carry", *GEOMETRIC_TAGS)

_J = {name: index for index, name in enumerate(SMPL_JOINTS)}
_FEET = [_J[name] for name in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
_HIPS = [_J["left_hip"], _J["right_hip"]]


def pose_geometry(poses: np.ndarray) -> np.ndarray:
    """(N, 72) poses -> (N, 3) float32 measurements, in the order of ``GEOMETRY``."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 72)
    if len(poses) == 0:
        return np.zeros((0, len(GEOMETRY)), dtype=np.float32)
    joints = smpl_skeleton(poses)
    spine = joints[:, _J["neck"]] - joints[:, _J["pelvis"]]
    cosine = spine[:, 1] / np.maximum(np.linalg.norm(spine, axis=1), 1e-9)
    tilt = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    feet = joints[:, _HIPS, 1].min(axis=1) - joints[:, _FEET, 1].max(axis=1)
    head = joints[:, _J["head"], 1] - joints[:, _J["pelvis"], 1]
    return np.stack([tilt, feet, head], axis=1).astype(np.float32)


def hip_height_ratio(poses: np.ndarray) -> np.ndarray:
    """(N, 72) poses -> (N,) height of the mean hip joint over the lowest ankle or toe, as a fraction of
    the same height in the rest pose (1: standing straight; a crouch is well below)."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 72)
    joints = smpl_skeleton(np.concatenate([np.zeros((1, 72)), poses]))
    heights = joints[:, _HIPS, 1].mean(axis=1) - joints[:, _FEET, 1].min(axis=1)
    return heights[1:] / heights[0]


def leg_lift_deg(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 72) poses -> the largest angle from straight down over both legs (degrees, (N,) each) of the
    thigh (hip to knee) and of the shin (knee to ankle), on the posed rest skeleton in the y-up world."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 72)
    joints = smpl_skeleton(poses) if len(poses) else np.zeros((0, len(SMPL_JOINTS), 3))
    lifts = []
    for upper, lower in (("hip", "knee"), ("knee", "ankle")):
        per_leg = []
        for side in ("left", "right"):
            segment = joints[:, _J[f"{side}_{lower}"]] - joints[:, _J[f"{side}_{upper}"]]
            cosine = -segment[:, 1] / np.maximum(np.linalg.norm(segment, axis=1), 1e-9)
            per_leg.append(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))
        lifts.append(np.max(per_leg, axis=0))
    return lifts[0], lifts[1]


def geometric_tags(measured: np.ndarray) -> list[list[str]]:
    """The geometric tags of each pose, from its ``pose_geometry`` row."""
    out = []
    for tilt, feet, head in np.asarray(measured, dtype=np.float64).reshape(-1, len(GEOMETRY)):
        tags = []
        if tilt <= UPRIGHT_TORSO_TILT_DEG and feet > 0 and head > 0:
            tags.append("upright")
        if UPRIGHT_TORSO_TILT_DEG < tilt <= 60:
            tags.append("leaning")
        elif 60 < tilt <= 120:
            tags.append("horizontal")
        elif tilt > 120:
            tags.append("upside_down")
        if feet <= 0:
            tags.append("foot_raised")
        if head <= 0:
            tags.append("head_below_pelvis")
        out.append(tags)
    return out


def join_tags(tags: Iterable[str]) -> str:
    """Tags as a bank stores them: sorted, unique, comma-separated."""
    return ",".join(sorted({tag for tag in tags if tag}))


def split_tags(stored: str) -> list[str]:
    return [tag for tag in str(stored).split(",") if tag]


def all_tags(stored: Sequence[str], measured: np.ndarray) -> list[list[str]]:
    """Every tag of each pose: the bank's own and the geometric ones, sorted."""
    return [sorted({*split_tags(own), *geometric}) for own, geometric in zip(stored, geometric_tags(measured))]


def tag_counts(tag_lists: Iterable[Sequence[str]]) -> dict[str, int]:
    counts: Counter = Counter(tag for tags in tag_lists for tag in tags)
    return dict(sorted(counts.items()))


def shown_tag(tags: Sequence[str]) -> str:
    """The one tag a pose is shown by (its colour in plots)."""
    present = set(tags)
    return next((tag for tag in SHOWN_TAGS if tag in present), min(present) if present else "untagged")
