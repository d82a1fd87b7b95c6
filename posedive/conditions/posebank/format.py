"""The pose bank format (paper section 3.3): SMPL-24 poses from outside the Re-ID data.

On disk a bank is one ``.npz`` file holding, for N poses sorted by id:

* ``poses`` (N, 72) float32: SMPL-24 axis-angle, global orientation first, in posedive's world
  frame (y up, body facing +z at zero global orientation, +x on the body's left);
* ``ids`` (N,) str: stable pose ids (``<source>-<clip>-<frame>``, ``-mirror`` for mirrored poses),
  recorded in every sample's provenance;
* ``source``, ``clip``, ``licence`` (N,) str and ``frame`` (N,) int32: where each pose came from;
* ``format`` (): the bank format version, ``BANK_FORMAT``.

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
from typing import Iterable, Literal, Sequence

import numpy as np

from ...geometry.rotations import (
    axis_angle_to_matrix,
    heading_normalised,
    matrix_to_axis_angle,
    mirror_poses,
    smpl_skeleton,
)

BANK_FORMAT = 1
DEFAULT_DEDUP_M = 0.03

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


def clip_bank(poses: np.ndarray, source: str, clip: str, frames: Sequence[int], licence: str) -> PoseBank:
    """One clip's poses, with ids ``<source>-<clip>-<frame>``."""
    source, clip = slug(source), slug(clip)
    ids = [f"{source}-{clip}-{int(f):05d}" for f in frames]
    n = len(ids)
    return PoseBank.from_arrays(poses, ids, [source] * n, [clip] * n, frames, [licence] * n)


def combine(banks: Iterable[PoseBank]) -> PoseBank:
    banks = list(banks)
    if not banks:
        raise ValueError("no poses were imported")
    out = banks[0]
    for bank in banks[1:]:
        out = out.merged(bank)
    return out
