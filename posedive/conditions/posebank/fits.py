"""Importer of SMPL fits in the style of the Everybody-Dance-Now pipeline: per-frame or per-sequence
``pose`` (72) or ``global_orient`` + ``body_pose`` arrays, in ``.npz`` or ``.json`` files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import FormatError, InputError
from .format import IMPORT_HINT, PoseBank, Up, clip_bank, combine, fix_up

FITS_LICENCE = "unknown (user-supplied SMPL fits)"


def _fit_arrays(data: dict, where: str) -> np.ndarray:
    if "pose" in data or "poses" in data or "thetas" in data:
        key = next(k for k in ("pose", "poses", "thetas") if k in data)
        poses = np.asarray(data[key], dtype=np.float64)
        poses = poses.reshape(-1, poses.shape[-1])
        if poses.shape[1] != 72:
            raise FormatError(f"{where}: '{key}' must hold 72 values per frame, got {poses.shape}", hint=IMPORT_HINT)
        return poses
    if "global_orient" in data and "body_pose" in data:
        orient = np.asarray(data["global_orient"], dtype=np.float64).reshape(-1, 3)
        body = np.asarray(data["body_pose"], dtype=np.float64).reshape(len(orient), -1)
        if body.shape[1] not in (63, 69):
            raise FormatError(f"{where}: 'body_pose' must hold 63 or 69 values per frame, got {body.shape}",
                              hint=IMPORT_HINT)
        out = np.zeros((len(orient), 72))
        out[:, :3] = orient
        out[:, 3 : 3 + body.shape[1]] = body
        return out
    raise FormatError(f"{where}: no SMPL pose found (expected 'pose' (72) or 'global_orient' + 'body_pose')",
                      hint=IMPORT_HINT)


def _read_fit(path: Path) -> np.ndarray:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return _fit_arrays({k: data[k] for k in data.files}, str(path))
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise FormatError(f"{path}: not valid JSON: {error}", hint=IMPORT_HINT) from None
        if isinstance(data, list):
            return np.concatenate([_fit_arrays(item, f"{path}[{i}]") for i, item in enumerate(data)])
        return _fit_arrays(data, str(path))
    raise InputError(f"{path}: SMPL fits must be .npz or .json files", hint=IMPORT_HINT)


def import_smpl_fits(
    paths: Sequence[Path], *, every: int = 1, up: Up = "-y", licence: str = FITS_LICENCE, source: str = "fits"
) -> PoseBank:
    """SMPL fits as image-based fitters write them (one file per sequence, or a folder with one file
    per frame). Fits live in the camera frame (y down), hence ``up="-y"``."""
    banks = []
    for path in sorted(Path(p) for p in paths):
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".npz", ".json"))
            if not files:
                raise InputError(f"{path}: folder holds no .npz or .json SMPL fits", hint=IMPORT_HINT)
            poses = np.concatenate([_read_fit(p) for p in files])
        else:
            poses = _read_fit(path)
        frames = np.arange(0, len(poses), max(1, every))
        banks.append(clip_bank(fix_up(poses[frames], up), source, path.stem, frames, licence))
    return combine(banks)
