"""Standing and walking variations of DeepMimic's walk: what pedestrians do besides swinging their arms.

From phases of DeepMimic's walk cycle (its pelvis, spine and neck, so the upper body keeps a captured
posture), ``build_variations`` makes:

* walking with a smaller or a larger arm swing (``walk_armswing``);
* walking with the left hand busy (``walk_hands``): carrying a bag at the side or a box in both arms,
  holding a phone in front or at the ear, a hand in a trouser pocket; the right arm keeps swinging;
* standing (``stand``): the walk's upper body over straight, relaxed (one knee bent), wide-set or
  stepping legs, with the arms hanging, clasped in front or in the same busy-hand postures;
* each with the head straight or turned 30 deg to either side (standing also 60 deg to the left).

Arm postures are given as a hand position relative to the shoulder, in the chest's frame, with the
direction the elbow points; a two-bone solve on the SMPL rest skeleton turns them into shoulder and
elbow rotations, so a phone ends up at the ear whatever the torso does. Every angle stays within
comfortable joint ranges (elbow flexion at most 150 deg, neck and head turning 30 deg each at most).
Variations use the left hand; the bank's mirroring gives the right-handed twins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...geometry.rotations import (
    SMPL_JOINTS,
    SMPL_REST_OFFSETS,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    pose_to_local_matrices,
)
from .deepmimic import DEEPMIMIC_LICENCE, deepmimic_clip_paths, deepmimic_frames_to_smpl, read_deepmimic_clip
from .format import PoseBank, join_tags

VARIATIONS_LICENCE = f"{DEEPMIMIC_LICENCE}; varied procedurally by posedive (Apache-2.0)"

J = {name: index for index, name in enumerate(SMPL_JOINTS)}
UPPER_ARM_M = float(np.linalg.norm(SMPL_REST_OFFSETS[J["left_elbow"]]))
FOREARM_M = float(np.linalg.norm(SMPL_REST_OFFSETS[J["left_wrist"]]))
WALK_PHASES = tuple(range(0, 39, 5))  # DeepMimic's walk cycle has 39 frames
STAND_PHASES = (0, 20)


@dataclass(frozen=True)
class ArmPosture:
    """Where the left hand is, from the left shoulder in the chest's frame (x the body's left, y up,
    z forward, metres), and where the elbow points."""

    hand: tuple[float, float, float]
    elbow: tuple[float, float, float]
    tags: tuple[str, ...] = ()
    both: bool = False  # the right arm mirrors the left


ARMS: dict[str, ArmPosture] = {
    "hang": ArmPosture((0.05, -0.50, 0.04), (0.2, 0.0, -1.0), both=True),
    "clasp": ArmPosture((-0.15, -0.40, 0.22), (0.4, -1.0, -0.3), both=True),
    "bag": ArmPosture((0.11, -0.49, 0.0), (0.3, 0.0, -1.0), ("carry",)),
    "box": ArmPosture((-0.12, -0.30, 0.34), (0.6, -1.0, 0.0), ("carry",), both=True),
    "phone": ArmPosture((-0.12, -0.22, 0.30), (0.3, -1.0, 0.0), ("carry", "phone")),
    "call": ArmPosture((-0.11, 0.16, 0.03), (0.5, -0.6, 0.6), ("carry", "phone")),
    "pocket": ArmPosture((-0.07, -0.44, 0.09), (0.4, 0.0, -1.0)),
}
# Leg rotations for standing (degrees, about the joint's x axis unless named): thigh forward is a
# negative hip angle, a bent knee a positive one; the ankle keeps the foot flat.
LEGS: dict[str, dict[str, tuple[float, float, float]]] = {
    "straight": {},
    "relaxed": {"left_hip": (-7, 0, 0), "left_knee": (15, 0, 0), "left_ankle": (-8, 0, 0)},
    "wide": {"left_hip": (0, 0, 6), "right_hip": (0, 0, -6), "left_ankle": (0, 0, -6), "right_ankle": (0, 0, 6)},
    "step": {"left_hip": (-14, 0, 0), "left_knee": (6, 0, 0), "left_ankle": (8, 0, 0), "right_hip": (9, 0, 0),
             "right_ankle": (-9, 0, 0)},
}
HEAD_TURNS_DEG = {"walk": (0, 30, -30), "stand": (0, 30, -30, 60)}


def _rotation(degrees: tuple[float, float, float]) -> np.ndarray:
    return axis_angle_to_matrix(np.radians(np.asarray(degrees, dtype=np.float64)))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def arm_rotations(hand: np.ndarray, elbow_direction: np.ndarray, side: str = "left") -> tuple[np.ndarray, np.ndarray]:
    """Shoulder and elbow local rotations that put the hand at ``hand`` (from the shoulder, in the
    chest frame) with the elbow bent towards ``elbow_direction``; the elbow stays a hinge about its
    own y axis, as SMPL's is."""
    hand = np.asarray(hand, dtype=np.float64)
    reach = min(np.linalg.norm(hand), UPPER_ARM_M + FOREARM_M - 1e-6)
    toward = _unit(hand)
    pole = np.asarray(elbow_direction, dtype=np.float64)
    pole = _unit(pole - pole.dot(toward) * toward)
    cos_shoulder = (UPPER_ARM_M**2 + reach**2 - FOREARM_M**2) / (2 * UPPER_ARM_M * reach)
    angle = np.arccos(np.clip(cos_shoulder, -1.0, 1.0))
    upper = np.cos(angle) * toward + np.sin(angle) * pole
    fore = _unit(toward * reach - upper * UPPER_ARM_M)
    bend = float(np.arccos(np.clip(upper.dot(fore), -1.0, 1.0)))
    # The upper arm's rest direction (+x for the left arm, -x for the right) goes onto ``upper``; its
    # z axis onto the side of ``upper`` the forearm bends to, so the elbow's hinge is its y axis.
    along = upper if side == "left" else -upper
    across = _unit(fore - upper.dot(fore) * upper) if bend > 1e-6 else _unit(np.cross(along, [0.0, 1.0, 0.0]))
    shoulder = np.stack([along, np.cross(across, along), across], axis=1)
    elbow = axis_angle_to_matrix(np.array([0.0, -bend if side == "left" else bend, 0.0]))
    return shoulder, elbow


def _place_arm(local: np.ndarray, posture: ArmPosture, side: str) -> None:
    hand, elbow = np.array(posture.hand), np.array(posture.elbow)
    if side == "right":
        hand, elbow = hand * [-1, 1, 1], elbow * [-1, 1, 1]
    shoulder, bend = arm_rotations(hand, elbow, side)
    local[J[f"{side}_collar"]] = np.eye(3)
    local[J[f"{side}_shoulder"]] = shoulder
    local[J[f"{side}_elbow"]] = bend
    local[J[f"{side}_wrist"]] = np.eye(3)
    local[J[f"{side}_hand"]] = np.eye(3)


def _scaled_swing(local: np.ndarray, mean: np.ndarray, factor: float) -> None:
    for side in ("left", "right"):
        for joint in (J[f"{side}_shoulder"], J[f"{side}_elbow"]):
            offset = matrix_to_axis_angle(local[joint] @ mean[joint].T)
            local[joint] = axis_angle_to_matrix(factor * offset) @ mean[joint]


def _turn_head(local: np.ndarray, degrees: float) -> None:
    half = _rotation((0.0, degrees / 2, 0.0))
    local[J["neck"]] = local[J["neck"]] @ half
    local[J["head"]] = local[J["head"]] @ half


def _stand(local: np.ndarray, legs: dict[str, tuple[float, float, float]]) -> None:
    local[J["pelvis"]] = np.eye(3)
    for side in ("left", "right"):
        for joint in ("hip", "knee", "ankle", "foot"):
            name = f"{side}_{joint}"
            local[J[name]] = _rotation(legs.get(name, (0.0, 0.0, 0.0)))


def _walk_cycle() -> np.ndarray:
    path = next(p for p in deepmimic_clip_paths() if p.stem == "humanoid3d_walk")
    return pose_to_local_matrices(deepmimic_frames_to_smpl(read_deepmimic_clip(path)))


def build_variations() -> PoseBank:
    """The standing and walking variations (left-handed; mirror the bank for the right hand)."""
    cycle = _walk_cycle()
    mean = axis_angle_to_matrix(matrix_to_axis_angle(cycle).mean(axis=0))
    poses, ids, clips, frames, tags = [], [], [], [], []

    def add(local: np.ndarray, clip: str, frame: int, variant: str, pose_tags: tuple[str, ...]) -> None:
        poses.append(matrix_to_axis_angle(local).reshape(72))
        ids.append(f"deepmimic-{clip}-{frame:05d}-{variant}")
        clips.append(clip)
        frames.append(frame)
        tags.append(join_tags(pose_tags))

    for frame in WALK_PHASES:
        styles: list[tuple[str, str, tuple[str, ...], np.ndarray]] = []
        for name, factor in (("swing_small", 0.35), ("swing_large", 1.7)):
            local = cycle[frame].copy()
            _scaled_swing(local, mean, factor)
            styles.append(("walk_armswing", name, (), local))
        for name in ("bag", "box", "phone", "call", "pocket"):
            local = cycle[frame].copy()
            for side in ("left", "right") if ARMS[name].both else ("left",):
                _place_arm(local, ARMS[name], side)
            styles.append(("walk_hands", name, ARMS[name].tags, local))
        for clip, name, style_tags, local in styles:
            for turn in HEAD_TURNS_DEG["walk"]:
                turned = local.copy()
                _turn_head(turned, turn)
                add(turned, clip, frame, f"{name}-{_turn_name(turn)}", ("walk", *style_tags, *_turn_tags(turn)))
    for frame in STAND_PHASES:
        for legs_name, legs in LEGS.items():
            for arms_name, posture in ARMS.items():
                local = cycle[frame].copy()
                _stand(local, legs)
                _place_arm(local, posture, "left")
                _place_arm(local, posture if posture.both else ARMS["hang"], "right")
                for turn in HEAD_TURNS_DEG["stand"]:
                    turned = local.copy()
                    _turn_head(turned, turn)
                    variant = f"{legs_name}-{arms_name}-{_turn_name(turn)}"
                    add(turned, "stand", frame, variant, ("stand", *posture.tags, *_turn_tags(turn)))
    n = len(ids)
    return PoseBank.from_arrays(np.stack(poses), ids, ["deepmimic"] * n, clips, frames, [VARIATIONS_LICENCE] * n, tags)


def _turn_name(degrees: float) -> str:
    return "ahead" if degrees == 0 else f"look_{'left' if degrees > 0 else 'right'}{abs(int(degrees))}"


def _turn_tags(degrees: float) -> tuple[str, ...]:
    return ("head_turn",) if degrees else ()
