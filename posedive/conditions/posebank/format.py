"""The pose bank format (paper section 3.3): SMPL-24 poses from outside the Re-ID data.

On disk a bank is one ``.npz`` file holding, for N poses sorted by id:

* ``poses`` (N, 72) float32: SMPL-24 axis-angle, global orientation first, in posedive's world
  frame (y up, body facing +z at zero global orientation, +x on the body's left);
* ``ids`` (N,) str: stable pose ids (``<source>-<clip>-<frame>``, ``-mirror`` for mirrored poses),
  recorded in every sample's provenance;
* ``source``, ``clip``, ``licence`` (N,) str and ``frame`` (N,) int32: where each pose came from;
* ``tags`` (N,) str: the pose's own tags (its clip's: ``walk``, ``dance``, ...), comma-separated;
* ``geometry`` (N, 3) float32: torso tilt, feet below hips, head above pelvis of the posed skeleton,
  from which every bank's geometric tags (``upright``, ...) follow (see ``tags``);
* ``format`` (): the bank format version, ``BANK_FORMAT`` (format 1 banks, without ``tags`` and
  ``geometry``, still load: they get their geometry measured and no tags of their own).

Importers (one module each in this package) turn what users bring into this form. Every bank can
mirror its poses (left <-> right) and de-duplicate them, so near-identical frames of slow motion do
not dominate uniform sampling. Duplicates are judged on the heading-free posed skeleton (the camera
azimuth is sampled separately), by mean per-joint distance.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ... import formats
from ...errors import FormatError, InputError, PathNotFound
from ...geometry.rotations import (
    axis_angle_to_matrix,
    heading_normalised,
    matrix_to_axis_angle,
    mirror_poses,
    smpl_skeleton,
)
from ...recipe import UpAxis as Up
from .tags import GEOMETRY, all_tags, join_tags, pose_geometry, split_tags, tag_counts

BANK_FORMAT = formats.POSE_BANK.version
DEFAULT_DEDUP_M = 0.03

# Rotations taking a source's world axes to posedive's y-up world.
UP_FIX: dict[str, np.ndarray] = {
    "y": np.eye(3),
    "z": axis_angle_to_matrix(np.array([-np.pi / 2, 0.0, 0.0])),  # z-up (AMASS) -> y-up
    "-y": axis_angle_to_matrix(np.array([np.pi, 0.0, 0.0])),  # camera frame (y down, z forward)
}


@dataclass(frozen=True)
class PoseBank:
    """Poses with their ids, origin and tags, sorted by id."""

    poses: np.ndarray
    ids: np.ndarray
    source: np.ndarray
    clip: np.ndarray
    frame: np.ndarray
    licence: np.ndarray
    tags: np.ndarray  # the bank's own tags of each pose (``tags.join_tags``); "" for none
    geometry: np.ndarray  # (N, 3) float32 measurements of the posed skeleton, ``tags.GEOMETRY``

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.poses.shape != (n, 72):
            raise ValueError(f"pose bank: poses must be (N, 72) for {n} ids, got {self.poses.shape}")
        if self.geometry.shape != (n, len(GEOMETRY)):
            raise ValueError(f"pose bank: geometry must be (N, {len(GEOMETRY)}) for {n} ids, got {self.geometry.shape}")
        for name in ("source", "clip", "frame", "licence", "tags"):
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
        tags: Sequence[str] | None = None,
        geometry: np.ndarray | None = None,
    ) -> "PoseBank":
        """A bank from per-pose arrays in any order. ``tags`` are the poses' own tags (joined with
        ``join_tags``; none by default); ``geometry`` is measured from the poses unless given."""
        poses = np.asarray(poses, dtype=np.float32).reshape(-1, 72)
        order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
        tags = [""] * len(poses) if tags is None else [join_tags(split_tags(t)) for t in tags]
        geometry = pose_geometry(poses) if geometry is None else np.asarray(geometry, dtype=np.float32)
        return cls(
            poses=poses[order],
            ids=np.asarray(ids, dtype=str)[order],
            source=np.asarray(source, dtype=str)[order],
            clip=np.asarray(clip, dtype=str)[order],
            frame=np.asarray(frame, dtype=np.int32)[order],
            licence=np.asarray(licence, dtype=str)[order],
            tags=np.asarray(tags, dtype=str)[order],
            geometry=geometry.reshape(-1, len(GEOMETRY))[order],
        )

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, pose_id: str) -> int:
        index = int(np.searchsorted(self.ids, pose_id))
        if index >= len(self.ids) or self.ids[index] != pose_id:
            raise KeyError(f"pose id {pose_id!r} is not in the pose bank")
        return index

    def pose(self, pose_id: str) -> np.ndarray:
        return self.poses[self.index(pose_id)]

    def tags_of(self, pose_id: str) -> list[str]:
        """Every tag of a pose: the bank's own and the geometric ones."""
        index = self.index(pose_id)
        return all_tags(self.tags[index : index + 1], self.geometry[index : index + 1])[0]

    def tag_lists(self) -> list[list[str]]:
        """Every tag of every pose, in id order."""
        return all_tags(self.tags, self.geometry)

    def sample(self, count: int, rng: np.random.Generator) -> list[str]:
        """``count`` pose ids drawn uniformly (with replacement), as the paper samples poses."""
        return [str(self.ids[i]) for i in rng.integers(0, len(self.ids), size=count)]

    def subset(self, keep: np.ndarray) -> "PoseBank":
        """The poses at ``keep`` (indices or a boolean mask), still sorted by id."""
        keep = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.sort(np.asarray(keep, dtype=int))
        return PoseBank(*(getattr(self, name)[keep] for name in _FIELDS))

    def merged(self, other: "PoseBank") -> "PoseBank":
        return PoseBank.from_arrays(*(np.concatenate([getattr(self, name), getattr(other, name)]) for name in _FIELDS))

    def with_mirrors(self) -> "PoseBank":
        """The bank plus every pose mirrored left <-> right (ids get ``-mirror``). A reflection keeps
        heights and the torso's tilt, so the mirrored poses keep their geometry."""
        mirrored = PoseBank.from_arrays(mirror_poses(self.poses), [f"{i}-mirror" for i in self.ids], self.source,
                                        self.clip, self.frame, self.licence, self.tags, self.geometry)
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
        return self.subset(np.array(kept, dtype=int))

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **{name: getattr(self, name) for name in _FIELDS}, format=np.int32(BANK_FORMAT))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path) -> "PoseBank":
        """A bank file of this format or an older one (format 1 banks have no tags of their own; their
        geometry is measured on load)."""
        path = Path(path)
        if not path.is_file():
            raise PathNotFound(f"{path}: pose bank not found")
        with np.load(path, allow_pickle=False) as data:
            if "format" not in data:
                raise FormatError(f"{path}: not a posedive pose bank (missing arrays ['format'])")
            version = formats.check_version(formats.POSE_BANK, int(data["format"]), path)
            needed = _FIELDS if version == BANK_FORMAT else _FIELDS[:6]
            missing = [k for k in needed if k not in data]
            if missing:
                raise FormatError(f"{path}: not a posedive pose bank (missing arrays {missing})")
            try:
                return cls.from_arrays(*(data[name] for name in needed))
            except ValueError as error:
                raise FormatError(f"{path}: {error}") from None

    def summary(self) -> dict[str, object]:
        clips: dict[str, int] = {}
        for source, clip in zip(self.source, self.clip):
            key = f"{source}/{clip}"
            clips[key] = clips.get(key, 0) + 1
        return {"poses": len(self), "clips": dict(sorted(clips.items())), "licences": sorted(set(self.licence.tolist())),
                "tags": tag_counts(self.tag_lists())}


_FIELDS = ("poses", "ids", "source", "clip", "frame", "licence", "tags", "geometry")

# The hint of an input file an importer cannot read.
IMPORT_HINT = "`posedive posebank formats` lists what each importer reads"


def slug(text: str, empty: str = "clip") -> str:
    """``text`` as a pose-id part: letters, digits and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or empty


def fix_up(poses: np.ndarray, up: Up) -> np.ndarray:
    """Poses whose world has ``up`` as its vertical axis, turned into posedive's y-up world."""
    if up not in UP_FIX:
        raise ValueError(f"unknown up axis {up!r}; choose one of {sorted(UP_FIX)}")
    poses = np.array(poses, dtype=np.float64).reshape(-1, 72)
    poses[:, :3] = matrix_to_axis_angle(UP_FIX[up] @ axis_angle_to_matrix(poses[:, :3]))
    return poses


def clip_bank(
    poses: np.ndarray, source: str, clip: str, frames: Sequence[int], licence: str, tags: Iterable[str] = ()
) -> PoseBank:
    """One clip's poses, with ids ``<source>-<clip>-<frame>`` and the clip's ``tags``."""
    source, clip = slug(source), slug(clip)
    ids = [f"{source}-{clip}-{int(f):05d}" for f in frames]
    n = len(ids)
    return PoseBank.from_arrays(poses, ids, [source] * n, [clip] * n, frames, [licence] * n, [join_tags(tags)] * n)


def combine(banks: Iterable[PoseBank]) -> PoseBank:
    banks = list(banks)
    if not banks:
        raise InputError("no poses were imported", hint="give input files or folders the importer reads; " + IMPORT_HINT)
    out = banks[0]
    for bank in banks[1:]:
        out = out.merged(bank)
    return out
