"""The built-in importer: DeepMimic's humanoid motion clips, as shipped in the ``pybullet`` wheel."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ...errors import FormatError, MissingDependency
from ...geometry.rotations import (
    SMPL_JOINTS,
    axis_angle_to_matrix,
    global_to_local,
    matrix_to_axis_angle,
    quaternion_wxyz_to_matrix,
)
from .format import DEFAULT_DEDUP_M, PoseBank, clip_bank, combine

logger = logging.getLogger(__name__)

DEEPMIMIC_LICENCE = (
    "DeepMimic motion clips (github.com/xbpeng/DeepMimic, MIT licence), as shipped in pybullet_data "
    "(github.com/bulletphysics/bullet3, zlib licence)"
)
# What each clip shows, as tags a recipe's poses.include / poses.exclude can name.
CLIP_TAGS: dict[str, tuple[str, ...]] = {
    "backflip": ("acrobatics", "jump"),
    "cartwheel": ("acrobatics",),
    "crawl": ("floor",),
    "dance_a": ("dance",),
    "dance_b": ("dance",),
    "getup_facedown": ("floor", "getup"),
    "getup_faceup": ("floor", "getup"),
    "jump": ("jump",),
    "kick": ("kick", "martial"),
    "punch": ("punch", "martial"),
    "roll": ("acrobatics", "floor"),
    "run": ("run",),
    "spin": ("dance", "turn"),
    "spinkick": ("acrobatics", "kick", "martial", "turn"),
    "walk": ("walk",),
}
# DeepMimic's humanoid is y up, facing +x, its right on +z; this takes its axes to posedive's world
# (x -> z, y -> y, z -> -x).
DEEPMIMIC_TO_WORLD = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
# DeepMimic's rest pose hangs the arms down; SMPL's T-pose holds them sideways. These rotations
# (world frame) take SMPL's rest arm direction onto DeepMimic's.
_ARM_DOWN = {
    "left": axis_angle_to_matrix(np.array([0.0, 0.0, -np.pi / 2])),
    "right": axis_angle_to_matrix(np.array([0.0, 0.0, np.pi / 2])),
}


def deepmimic_clip_paths() -> list[Path]:
    """The ``humanoid3d_*.txt`` motion clips inside the installed ``pybullet`` wheel."""
    try:
        import pybullet_data
    except ImportError as error:
        raise MissingDependency("the built-in pose bank needs pybullet (pip install pybullet==3.2.7)", hint="pip install pybullet==3.2.7") from error
    folder = Path(pybullet_data.getDataPath()) / "data" / "motions"
    paths = sorted(folder.glob("humanoid3d_*.txt"))
    if not paths:
        raise MissingDependency(f"{folder}: no humanoid3d_*.txt DeepMimic clips in this pybullet installation",
                                hint="reinstall pybullet: pip install --force-reinstall pybullet==3.2.7")
    return paths


def deepmimic_frames_to_smpl(frames: np.ndarray) -> np.ndarray:
    """(T, 44) DeepMimic humanoid frames -> (T, 72) SMPL-24 poses.

    A frame holds: duration, root position (3), root rotation (w, x, y, z), then chest, neck,
    right hip (quaternions), right knee (angle), right ankle, right shoulder (quaternions), right
    elbow (angle), left hip, left knee, left ankle, left shoulder, left elbow, for the links of
    ``pybullet_data/humanoid/humanoid.urdf`` (knees and elbows turn about the link's z axis). All link
    frames are world-aligned at rest, so each link's world rotation is the product of the rotations
    above it; those are moved to posedive's axes, the arms corrected for the arms-down rest pose,
    the chest rotation spread evenly over SMPL's three spine joints and the neck's over neck and
    head, and the result turned back into SMPL local rotations.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != 44:
        raise ValueError(f"DeepMimic frames must be (T, 44), got {frames.shape}")

    def quat(start: int) -> np.ndarray:
        return quaternion_wxyz_to_matrix(frames[:, start : start + 4])

    def hinge(column: int) -> np.ndarray:
        angles = frames[:, column]
        return axis_angle_to_matrix(np.stack([np.zeros_like(angles), np.zeros_like(angles), angles], axis=1))

    root = quat(4)
    chest = root @ quat(8)
    neck = chest @ quat(12)
    links = {"chest": chest, "neck": neck, "root": root}
    for side, start in (("right", 16), ("left", 30)):
        hip = root @ quat(start)
        knee = hip @ hinge(start + 4)
        ankle = knee @ quat(start + 5)
        shoulder = chest @ quat(start + 9)
        elbow = shoulder @ hinge(start + 13)
        links.update({f"{side}_hip": hip, f"{side}_knee": knee, f"{side}_ankle": ankle, f"{side}_shoulder": shoulder, f"{side}_elbow": elbow})
    m = DEEPMIMIC_TO_WORLD
    w = {name: m @ rotation @ m.T for name, rotation in links.items()}

    chest_local = matrix_to_axis_angle(np.swapaxes(w["root"], 1, 2) @ w["chest"])
    neck_local = matrix_to_axis_angle(np.swapaxes(w["chest"], 1, 2) @ w["neck"])
    third = axis_angle_to_matrix(chest_local / 3.0)
    half = axis_angle_to_matrix(neck_local / 2.0)
    g = np.empty((len(frames), 24, 3, 3))

    def put(joint: str, rotation: np.ndarray) -> None:
        g[:, SMPL_JOINTS.index(joint)] = rotation

    put("pelvis", w["root"])
    put("spine1", w["root"] @ third)
    put("spine2", w["root"] @ third @ third)
    put("spine3", w["chest"])
    put("neck", w["chest"] @ half)
    put("head", w["neck"])
    for side in ("left", "right"):
        put(f"{side}_hip", w[f"{side}_hip"])
        put(f"{side}_knee", w[f"{side}_knee"])
        put(f"{side}_ankle", w[f"{side}_ankle"])
        put(f"{side}_foot", w[f"{side}_ankle"])
        put(f"{side}_collar", w["chest"])
        put(f"{side}_shoulder", w[f"{side}_shoulder"] @ _ARM_DOWN[side])
        put(f"{side}_elbow", w[f"{side}_elbow"] @ _ARM_DOWN[side])
        put(f"{side}_wrist", w[f"{side}_elbow"] @ _ARM_DOWN[side])
        put(f"{side}_hand", w[f"{side}_elbow"] @ _ARM_DOWN[side])
    return matrix_to_axis_angle(global_to_local(g)).reshape(-1, 72)


def read_deepmimic_clip(path: Path) -> np.ndarray:
    try:
        data = json.loads(Path(path).read_text())
        frames = np.asarray(data["Frames"], dtype=np.float64)
    except (json.JSONDecodeError, KeyError, ValueError) as error:
        raise FormatError(f"{path}: not a DeepMimic motion file: {error}",
                          hint="a DeepMimic clip is JSON with a 'Frames' list") from None
    return frames


def build_deepmimic_bank(dedup_m: float = DEFAULT_DEDUP_M, mirror: bool = True) -> PoseBank:
    """Convert every DeepMimic clip in the pybullet wheel, add mirrored poses, de-duplicate."""
    banks = []
    for path in deepmimic_clip_paths():
        frames = read_deepmimic_clip(path)
        clip = path.stem.removeprefix("humanoid3d_")
        banks.append(clip_bank(deepmimic_frames_to_smpl(frames), "deepmimic", clip, np.arange(len(frames)),
                               DEEPMIMIC_LICENCE, CLIP_TAGS.get(clip, ())))
    bank = combine(banks)
    total = len(bank)
    if mirror:
        bank = bank.with_mirrors()
    bank = bank.deduplicated(dedup_m)
    logger.info("DeepMimic pose bank: %d frames, %d poses after mirroring and de-duplication", total, len(bank))
    return bank
