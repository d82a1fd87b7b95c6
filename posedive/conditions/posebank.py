"""The external pose bank (paper section 3.3): SMPL-24 poses from outside the Re-ID data.

On disk a bank is one ``.npz`` file holding, for N poses sorted by id:

* ``poses`` (N, 72) float32: SMPL-24 axis-angle, global orientation first, in posedive's world
  frame (y up, body facing +z at zero global orientation, +x on the body's left);
* ``ids`` (N,) str: stable pose ids (``<source>-<clip>-<frame>``, ``-mirror`` for mirrored poses),
  recorded in every sample's provenance;
* ``source``, ``clip``, ``licence`` (N,) str and ``frame`` (N,) int32: where each pose came from;
* ``format`` (): the bank format version.

Importers turn what users bring into this form: AMASS-style ``.npz`` sequences, SMPL fits in the
style of the Everybody-Dance-Now pipeline (per-frame or per-sequence ``pose`` / ``global_orient`` +
``body_pose`` arrays), and BVH motion capture (through the ``bvh`` package). The built-in bank
converts the DeepMimic clips that ship in the ``pybullet`` wheel.

Every importer can mirror poses (left <-> right) and de-duplicate them, so near-identical frames of
slow motion do not dominate uniform sampling. Duplicates are judged on the heading-free posed
skeleton (the camera azimuth is sampled separately), by mean per-joint distance.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np

from ..geometry.rotations import (
    SMPL_JOINTS,
    SMPL_PARENTS,
    SMPL_REST_OFFSETS,
    axis_angle_to_matrix,
    global_to_local,
    heading_normalised,
    matrix_to_axis_angle,
    mirror_poses,
    quaternion_wxyz_to_matrix,
    rotation_between,
    smpl_skeleton,
)
from ..paths import cache_dir

logger = logging.getLogger(__name__)

BANK_FORMAT = 1
# Bumped when the DeepMimic conversion changes, so cached built-in banks are rebuilt.
DEEPMIMIC_BANK_VERSION = 1
DEFAULT_DEDUP_M = 0.03
BUILTIN_BANKS: tuple[str, ...] = ("deepmimic",)

Up = Literal["y", "z", "-y"]
# Rotations taking a source's world axes to posedive's y-up world.
UP_FIX: dict[str, np.ndarray] = {
    "y": np.eye(3),
    "z": axis_angle_to_matrix(np.array([-np.pi / 2, 0.0, 0.0])),  # z-up (AMASS) -> y-up
    "-y": axis_angle_to_matrix(np.array([np.pi, 0.0, 0.0])),  # camera frame (y down, z forward)
}


@dataclass(frozen=True)
class PoseBank:
    """Poses with their ids and origin, sorted by id."""

    poses: np.ndarray
    ids: np.ndarray
    source: np.ndarray
    clip: np.ndarray
    frame: np.ndarray
    licence: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.poses.shape != (n, 72):
            raise ValueError(f"pose bank: poses must be (N, 72) for {n} ids, got {self.poses.shape}")
        for name in ("source", "clip", "frame", "licence"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"pose bank: {name} has {len(getattr(self, name))} entries for {n} poses")
        if len(set(self.ids.tolist())) != n:
            raise ValueError("pose bank: pose ids are not unique")

    @classmethod
    def from_arrays(
        cls,
        poses: np.ndarray,
        ids: Sequence[str],
        source: Sequence[str],
        clip: Sequence[str],
        frame: Sequence[int],
        licence: Sequence[str],
    ) -> "PoseBank":
        order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
        return cls(
            poses=np.asarray(poses, dtype=np.float32).reshape(-1, 72)[order],
            ids=np.asarray(ids, dtype=str)[order],
            source=np.asarray(source, dtype=str)[order],
            clip=np.asarray(clip, dtype=str)[order],
            frame=np.asarray(frame, dtype=np.int32)[order],
            licence=np.asarray(licence, dtype=str)[order],
        )

    def __len__(self) -> int:
        return len(self.ids)

    def pose(self, pose_id: str) -> np.ndarray:
        index = int(np.searchsorted(self.ids, pose_id))
        if index >= len(self.ids) or self.ids[index] != pose_id:
            raise KeyError(f"pose id {pose_id!r} is not in the pose bank")
        return self.poses[index]

    def sample(self, count: int, rng: np.random.Generator) -> list[str]:
        """``count`` pose ids drawn uniformly (with replacement), as the paper samples poses."""
        return [str(self.ids[i]) for i in rng.integers(0, len(self.ids), size=count)]

    def merged(self, other: "PoseBank") -> "PoseBank":
        return PoseBank.from_arrays(
            np.concatenate([self.poses, other.poses]),
            np.concatenate([self.ids, other.ids]),
            np.concatenate([self.source, other.source]),
            np.concatenate([self.clip, other.clip]),
            np.concatenate([self.frame, other.frame]),
            np.concatenate([self.licence, other.licence]),
        )

    def with_mirrors(self) -> "PoseBank":
        """The bank plus every pose mirrored left <-> right (ids get ``-mirror``)."""
        mirrored = PoseBank.from_arrays(
            mirror_poses(self.poses), [f"{i}-mirror" for i in self.ids], self.source, self.clip, self.frame, self.licence
        )
        return self.merged(mirrored)

    def deduplicated(self, threshold_m: float = DEFAULT_DEDUP_M) -> "PoseBank":
        """Drop poses whose heading-free skeleton lies within ``threshold_m`` mean per-joint distance
        of an earlier kept pose (walking clip by clip, frame by frame, originals before mirrors)."""
        if threshold_m <= 0 or len(self) == 0:
            return self
        order = sorted(range(len(self)), key=lambda i: (self.source[i], self.clip[i], int(self.frame[i]), self.ids[i]))
        joints = smpl_skeleton(heading_normalised(self.poses[order])).astype(np.float32)
        kept: list[int] = []
        kept_joints = np.empty((0, 24, 3), dtype=np.float32)
        for position, joint_set in enumerate(joints):
            if len(kept):
                distance = np.linalg.norm(kept_joints - joint_set, axis=2).mean(axis=1).min()
                if distance < threshold_m:
                    continue
            kept.append(order[position])
            kept_joints = np.concatenate([kept_joints, joint_set[None]])
        keep = np.array(sorted(kept))
        return PoseBank(*(getattr(self, name)[keep] for name in ("poses", "ids", "source", "clip", "frame", "licence")))

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez_compressed(
            tmp,
            poses=self.poses,
            ids=self.ids,
            source=self.source,
            clip=self.clip,
            frame=self.frame,
            licence=self.licence,
            format=np.int32(BANK_FORMAT),
        )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path) -> "PoseBank":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: pose bank not found")
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("poses", "ids", "source", "clip", "frame", "licence", "format") if k not in data]
            if missing:
                raise ValueError(f"{path}: not a posedive pose bank (missing arrays {missing})")
            if int(data["format"]) != BANK_FORMAT:
                raise ValueError(f"{path}: pose bank format {int(data['format'])}, this posedive reads {BANK_FORMAT}")
            try:
                return cls.from_arrays(
                    data["poses"], data["ids"], data["source"], data["clip"], data["frame"], data["licence"]
                )
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None

    def summary(self) -> dict[str, object]:
        clips: dict[str, int] = {}
        for source, clip in zip(self.source, self.clip):
            key = f"{source}/{clip}"
            clips[key] = clips.get(key, 0) + 1
        return {"poses": len(self), "clips": dict(sorted(clips.items())), "licences": sorted(set(self.licence.tolist()))}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "clip"


def _fix_up(poses: np.ndarray, up: Up) -> np.ndarray:
    if up not in UP_FIX:
        raise ValueError(f"unknown up axis {up!r}; choose one of {sorted(UP_FIX)}")
    poses = np.array(poses, dtype=np.float64).reshape(-1, 72)
    poses[:, :3] = matrix_to_axis_angle(UP_FIX[up] @ axis_angle_to_matrix(poses[:, :3]))
    return poses


def _bank(poses: np.ndarray, source: str, clip: str, frames: Sequence[int], licence: str) -> PoseBank:
    source, clip = _slug(source), _slug(clip)
    ids = [f"{source}-{clip}-{int(f):05d}" for f in frames]
    n = len(ids)
    return PoseBank.from_arrays(poses, ids, [source] * n, [clip] * n, frames, [licence] * n)


def _combine(banks: Iterable[PoseBank]) -> PoseBank:
    banks = list(banks)
    if not banks:
        raise ValueError("no poses were imported")
    out = banks[0]
    for bank in banks[1:]:
        out = out.merged(bank)
    return out


# ------------------------------------------------------------------------------------------ AMASS
def _smpl72_from_columns(poses: np.ndarray, where: str) -> np.ndarray:
    """SMPL-24 from SMPL (72), SMPL-H (156) or SMPL-X-body (>= 66) columns: body joints kept, the
    two hand joints zero unless the file is plain SMPL."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] < 66:
        raise ValueError(f"{where}: expected (frames, >= 66) axis-angle poses, got {poses.shape}")
    out = np.zeros((len(poses), 72))
    out[:, : 72 if poses.shape[1] == 72 else 66] = poses[:, : 72 if poses.shape[1] == 72 else 66]
    return out


def import_amass(
    paths: Sequence[Path], *, every: int = 10, up: Up = "z", licence: str = "AMASS (see amass.is.tue.mpg.de)", source: str = "amass"
) -> PoseBank:
    """AMASS-style ``.npz`` sequences (``poses`` (T, 156|72), or ``root_orient`` + ``pose_body``),
    keeping every ``every``-th frame. AMASS is z-up, hence ``up="z"``."""
    banks = []
    for path in sorted(Path(p) for p in paths):
        with np.load(path, allow_pickle=False) as data:
            if "poses" in data:
                poses = _smpl72_from_columns(data["poses"], str(path))
            elif "root_orient" in data and "pose_body" in data:
                poses = _smpl72_from_columns(np.concatenate([data["root_orient"], data["pose_body"]], axis=1), str(path))
            else:
                raise ValueError(f"{path}: not an AMASS-style file (needs 'poses' or 'root_orient' + 'pose_body')")
        frames = np.arange(0, len(poses), max(1, every))
        banks.append(_bank(_fix_up(poses[frames], up), source, path.stem, frames, licence))
    return _combine(banks)


# ----------------------------------------------------------------------------- SMPL fits (EDN style)
def _fit_arrays(data: dict, where: str) -> np.ndarray:
    if "pose" in data or "poses" in data or "thetas" in data:
        key = next(k for k in ("pose", "poses", "thetas") if k in data)
        poses = np.asarray(data[key], dtype=np.float64)
        poses = poses.reshape(-1, poses.shape[-1])
        if poses.shape[1] != 72:
            raise ValueError(f"{where}: '{key}' must hold 72 values per frame, got {poses.shape}")
        return poses
    if "global_orient" in data and "body_pose" in data:
        orient = np.asarray(data["global_orient"], dtype=np.float64).reshape(-1, 3)
        body = np.asarray(data["body_pose"], dtype=np.float64).reshape(len(orient), -1)
        if body.shape[1] not in (63, 69):
            raise ValueError(f"{where}: 'body_pose' must hold 63 or 69 values per frame, got {body.shape}")
        out = np.zeros((len(orient), 72))
        out[:, :3] = orient
        out[:, 3 : 3 + body.shape[1]] = body
        return out
    raise ValueError(f"{where}: no SMPL pose found (expected 'pose' (72) or 'global_orient' + 'body_pose')")


def _read_fit(path: Path) -> np.ndarray:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return _fit_arrays({k: data[k] for k in data.files}, str(path))
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON: {error}") from None
        if isinstance(data, list):
            return np.concatenate([_fit_arrays(item, f"{path}[{i}]") for i, item in enumerate(data)])
        return _fit_arrays(data, str(path))
    raise ValueError(f"{path}: SMPL fits must be .npz or .json files")


def import_smpl_fits(
    paths: Sequence[Path], *, every: int = 1, up: Up = "-y", licence: str = "unknown (user-supplied SMPL fits)", source: str = "fits"
) -> PoseBank:
    """SMPL fits as image-based fitters write them (one file per sequence, or a folder with one file
    per frame). Fits live in the camera frame (y down), hence ``up="-y"``."""
    banks = []
    for path in sorted(Path(p) for p in paths):
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".npz", ".json"))
            if not files:
                raise ValueError(f"{path}: folder holds no .npz or .json SMPL fits")
            poses = np.concatenate([_read_fit(p) for p in files])
        else:
            poses = _read_fit(path)
        frames = np.arange(0, len(poses), max(1, every))
        banks.append(_bank(_fix_up(poses[frames], up), source, path.stem, frames, licence))
    return _combine(banks)


# -------------------------------------------------------------------------------------------- BVH
# BVH joint names (lower case, no "mixamorig:" prefix, no '_' or ' ') for each SMPL joint, in order of
# preference. The spine is matched by position along the hips-to-neck chain instead.
_BVH_NAMES: dict[str, tuple[str, ...]] = {
    "pelvis": ("hips", "pelvis", "root", "hip"),
    "neck": ("neck", "neck1", "lowerneck"),
    "head": ("head",),
}
for _s, _l in (("left", "l"), ("right", "r")):
    _BVH_NAMES.update(
        {
            f"{_s}_hip": (f"{_s}upleg", f"{_s}thigh", f"{_s}hip", f"{_s}upperleg", f"{_l}thigh", f"{_l}hip", f"{_l}femur"),
            f"{_s}_knee": (f"{_s}leg", f"{_s}knee", f"{_s}shin", f"{_s}lowerleg", f"{_l}shin", f"{_l}knee", f"{_l}tibia"),
            f"{_s}_ankle": (f"{_s}foot", f"{_s}ankle", f"{_l}foot", f"{_l}ankle"),
            f"{_s}_foot": (f"{_s}toebase", f"{_s}toe", f"{_s}toes", f"{_l}toe", f"{_l}toes"),
            f"{_s}_collar": (f"{_s}shoulder", f"{_s}collar", f"{_s}clavicle", f"{_l}collar", f"{_l}clavicle"),
            f"{_s}_shoulder": (f"{_s}arm", f"{_s}upperarm", f"{_s}humerus", f"{_l}shldr", f"{_l}humerus", f"{_l}upperarm"),
            f"{_s}_elbow": (f"{_s}forearm", f"{_s}lowerarm", f"{_s}elbow", f"{_l}forearm", f"{_l}radius"),
            f"{_s}_wrist": (f"{_s}hand", f"{_s}wrist", f"{_l}hand", f"{_l}wrist"),
        }
    )
# SMPL joints whose rest direction (towards this child) is matched to the BVH skeleton's, so a BVH
# whose rest pose is not SMPL's T-pose (arms down, say) still lands correctly.
_REST_MATCHED = {
    "left_shoulder": "left_elbow",
    "right_shoulder": "right_elbow",
    "left_elbow": "left_wrist",
    "right_elbow": "right_wrist",
    "left_hip": "left_knee",
    "right_hip": "right_knee",
    "left_knee": "left_ankle",
    "right_knee": "right_ankle",
}


def _bvh_key(name: str) -> str:
    return re.sub(r"[\s_:.-]", "", name.lower().replace("mixamorig", ""))


def import_bvh(
    paths: Sequence[Path], *, every: int = 4, up: Up = "y", licence: str = "unknown (user-supplied BVH)", source: str = "bvh"
) -> PoseBank:
    """BVH motion capture, read with the ``bvh`` package. Joint rotations are chained into world
    rotations, matched to SMPL joints by name, corrected for the file's rest pose and turned back
    into SMPL-24 local rotations. BVH rest frames are world-aligned (y up, facing +z by convention)."""
    from bvh import Bvh
    from scipy.spatial.transform import Rotation

    banks = []
    for path in sorted(Path(p) for p in paths):
        try:
            mocap = Bvh(Path(path).read_text())
            names = list(mocap.get_joints_names())
        except Exception as error:  # the bvh package raises bare errors on malformed files
            raise ValueError(f"{path}: cannot parse BVH: {error}") from None
        keys = {_bvh_key(n): n for n in names}
        parent_of = {n: (mocap.joint_parent(n).name if mocap.joint_parent_index(n) >= 0 else None) for n in names}
        frames = np.arange(0, mocap.nframes, max(1, every))

        world: dict[str, np.ndarray] = {}
        for name in names:
            channels = [c for c in mocap.joint_channels(name) if c.endswith("rotation")]
            if channels:
                values = np.asarray(mocap.frames_joint_channels(name, channels), dtype=np.float64)[frames]
                order = "".join(c[0].upper() for c in channels)
                local = Rotation.from_euler(order, values, degrees=True).as_matrix()
            else:
                local = np.tile(np.eye(3), (len(frames), 1, 1))
            parent = parent_of[name]
            world[name] = local if parent is None else world[parent] @ local

        def find(joint: str) -> str | None:
            return next((keys[k] for k in _BVH_NAMES.get(joint, ()) if k in keys), None)

        mapped: dict[str, str] = {j: n for j in SMPL_JOINTS if (n := find(j)) is not None}
        if "pelvis" not in mapped:
            mapped["pelvis"] = names[0]
        if "neck" in mapped:
            chain, node = [], parent_of[mapped["neck"]]
            while node is not None and node != mapped["pelvis"]:
                chain.append(node)
                node = parent_of[node]
            chain.reverse()
            for joint, fraction in (("spine1", 0.0), ("spine2", 0.5), ("spine3", 1.0)):
                if chain:
                    mapped[joint] = chain[int(round(fraction * (len(chain) - 1)))]

        def rest_position(name: str) -> np.ndarray:
            position = np.zeros(3)
            while name is not None:
                position = position + np.asarray(mocap.joint_offset(name), dtype=np.float64)
                name = parent_of[name]
            return position

        correction = {j: np.eye(3) for j in SMPL_JOINTS}
        for joint, child in _REST_MATCHED.items():
            if joint in mapped and child in mapped:
                bvh_dir = rest_position(mapped[child]) - rest_position(mapped[joint])
                smpl_dir = SMPL_REST_OFFSETS[SMPL_JOINTS.index(child)]
                if np.linalg.norm(bvh_dir) > 1e-9:
                    correction[joint] = rotation_between(smpl_dir, bvh_dir)
        for joint, source_joint in (("left_wrist", "left_elbow"), ("right_wrist", "right_elbow")):
            if joint not in mapped or mapped[joint] == mapped.get(source_joint):
                correction[joint] = correction[source_joint]

        smpl_world = np.empty((len(frames), 24, 3, 3))
        for index, joint in enumerate(SMPL_JOINTS):
            parent = SMPL_PARENTS[index]
            if joint in mapped:
                smpl_world[:, index] = world[mapped[joint]] @ correction[joint]
            else:  # unmatched joints (hands, feet, collars of simple rigs) follow their parent
                smpl_world[:, index] = smpl_world[:, parent] @ np.linalg.inv(correction[SMPL_JOINTS[parent]]) @ correction[joint]
        poses = matrix_to_axis_angle(global_to_local(smpl_world)).reshape(-1, 72)
        banks.append(_bank(_fix_up(poses, up), source, path.stem, frames, licence))
    return _combine(banks)


# -------------------------------------------------------------------------------------- DeepMimic
DEEPMIMIC_LICENCE = (
    "DeepMimic motion clips (github.com/xbpeng/DeepMimic, MIT licence), as shipped in pybullet_data "
    "(github.com/bulletphysics/bullet3, zlib licence)"
)
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
        raise ImportError("the built-in pose bank needs pybullet (pip install pybullet==3.2.7)") from error
    folder = Path(pybullet_data.getDataPath()) / "data" / "motions"
    paths = sorted(folder.glob("humanoid3d_*.txt"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no humanoid3d_*.txt DeepMimic clips in this pybullet installation")
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
        raise ValueError(f"{path}: not a DeepMimic motion file: {error}") from None
    return frames


def build_deepmimic_bank(dedup_m: float = DEFAULT_DEDUP_M, mirror: bool = True) -> PoseBank:
    """Convert every DeepMimic clip in the pybullet wheel, add mirrored poses, de-duplicate."""
    banks = []
    for path in deepmimic_clip_paths():
        frames = read_deepmimic_clip(path)
        clip = path.stem.removeprefix("humanoid3d_")
        banks.append(_bank(deepmimic_frames_to_smpl(frames), "deepmimic", clip, np.arange(len(frames)), DEEPMIMIC_LICENCE))
    bank = _combine(banks)
    total = len(bank)
    if mirror:
        bank = bank.with_mirrors()
    bank = bank.deduplicated(dedup_m)
    logger.info("DeepMimic pose bank: %d frames, %d poses after mirroring and de-duplication", total, len(bank))
    return bank


def builtin_bank_path(name: str = "deepmimic") -> Path:
    if name not in BUILTIN_BANKS:
        raise ValueError(f"unknown built-in pose bank {name!r}; built-in banks: {list(BUILTIN_BANKS)}")
    return cache_dir() / "posebanks" / f"{name}-v{DEEPMIMIC_BANK_VERSION}.npz"


def load_builtin_bank(name: str = "deepmimic", *, rebuild: bool = False) -> PoseBank:
    """The built-in bank, built and cached on first use."""
    path = builtin_bank_path(name)
    if path.is_file() and not rebuild:
        return PoseBank.load(path)
    logger.info("building the built-in %s pose bank into %s (once)", name, path)
    bank = build_deepmimic_bank()
    bank.save(path)
    return bank


def load_pose_bank(source: str, resolve=None) -> PoseBank:
    """A recipe's ``poses.source``: a built-in bank name or a path to a posedive ``.npz`` bank.
    ``resolve`` turns a relative path into an absolute one (``Recipe.resolve``)."""
    if source in BUILTIN_BANKS:
        return load_builtin_bank(source)
    path = resolve(source) if resolve is not None else Path(source)
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"poses.source: pose bank {path} not found (built-in banks: {list(BUILTIN_BANKS)}; "
            "build one with `posedive posebank build`)"
        )
    return PoseBank.load(path)
