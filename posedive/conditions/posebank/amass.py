"""Importer of AMASS-style motion sequences (``.npz`` with SMPL, SMPL-H or SMPL-X body poses)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import FormatError
from .format import IMPORT_HINT, PoseBank, Up, clip_bank, combine, fix_up

AMASS_LICENCE = "AMASS (see amass.is.tue.mpg.de)"


def _smpl72_from_columns(poses: np.ndarray, where: str) -> np.ndarray:
    """SMPL-24 from SMPL (72), SMPL-H (156) or SMPL-X-body (>= 66) columns: body joints kept, the
    two hand joints zero unless the file is plain SMPL."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] < 66:
        raise FormatError(f"{where}: expected (frames, >= 66) axis-angle poses, got {poses.shape}", hint=IMPORT_HINT)
    out = np.zeros((len(poses), 72))
    out[:, : 72 if poses.shape[1] == 72 else 66] = poses[:, : 72 if poses.shape[1] == 72 else 66]
    return out


def import_amass(
    paths: Sequence[Path], *, every: int = 10, up: Up = "z", licence: str = AMASS_LICENCE, source: str = "amass"
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
                raise FormatError(f"{path}: not an AMASS-style file (needs 'poses' or 'root_orient' + 'pose_body')",
                                  hint=IMPORT_HINT)
        frames = np.arange(0, len(poses), max(1, every))
        banks.append(clip_bank(fix_up(poses[frames], up), source, path.stem, frames, licence))
    return combine(banks)
