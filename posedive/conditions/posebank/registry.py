"""The registry of pose-bank importers: one entry per kind of input posedive turns into a bank.

``posedive posebank build --format NAME`` and a recipe's ``poses.kind`` name an entry here. An
importer reads its input files into a bank; mirroring and de-duplication are applied after it, the
same way for every importer (``import_bank``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ...errors import InputError, PathNotFound
from .builtin import BUILTIN_BANKS, load_builtin_bank
from .format import DEFAULT_DEDUP_M, PoseBank


@dataclass(frozen=True)
class BankImporter:
    name: str
    description: str
    run: Callable[..., PoseBank]
    # Which of the shared options (every, up, licence) the importer takes.
    options: tuple[str, ...]


def _amass(paths: Sequence[Path], **options) -> PoseBank:
    from .amass import import_amass

    return import_amass(paths, **options)


def _fits(paths: Sequence[Path], **options) -> PoseBank:
    from .fits import import_smpl_fits

    return import_smpl_fits(paths, **options)


def _bvh(paths: Sequence[Path], **options) -> PoseBank:
    from .bvh import import_bvh

    return import_bvh(paths, **options)


def _images(paths: Sequence[Path], *, licence: str = "as the fitted images") -> PoseBank:
    from .format import combine
    from .images import bank_from_images

    return combine(bank_from_images(path, licence=licence) for path in paths)


IMPORTERS: dict[str, BankImporter] = {
    entry.name: entry
    for entry in (
        BankImporter("amass", "AMASS-style .npz sequences (SMPL / SMPL-H / SMPL-X body poses), z-up", _amass,
                     ("every", "up", "licence")),
        BankImporter("fits", "SMPL fits (.npz / .json per sequence or a folder per sequence), camera frame", _fits,
                     ("every", "up", "licence")),
        BankImporter("bvh", "BVH motion capture", _bvh, ("every", "up", "licence")),
        BankImporter("images", "the people in photographs, a folder of them or a fixed-camera video, fitted",
                     _images, ("licence",)),
    )
}


def bank_importer(name: str) -> BankImporter:
    """The importer ``name``; an unknown name is an error that lists the importers and built-in banks."""
    if name not in IMPORTERS:
        raise InputError(f"unknown pose bank importer {name!r}; importers: {', '.join(IMPORTERS)} "
                         f"(built-in banks: {', '.join(BUILTIN_BANKS)})")
    return IMPORTERS[name]


def import_bank(
    name: str, paths: Sequence[Path], *, mirror: bool = True, dedup_m: float = DEFAULT_DEDUP_M, **options
) -> PoseBank:
    """Run importer ``name`` over ``paths``, then add mirrored poses and drop near-duplicates."""
    importer = bank_importer(name)
    unknown = sorted(set(options) - set(importer.options))
    if unknown:
        raise InputError(f"pose bank importer {name!r} takes no {', '.join(unknown)} option")
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise PathNotFound(f"inputs not found: {', '.join(missing)}")
    bank = importer.run([Path(p) for p in paths], **options)
    if mirror:
        bank = bank.with_mirrors()
    return bank.deduplicated(dedup_m)


def load_pose_bank(source: str, resolve=None) -> PoseBank:
    """A recipe's ``poses.source`` as recipes wrote it before ``poses.kind``: a built-in bank name or
    a path to a posedive ``.npz`` bank. ``resolve`` turns a relative path into an absolute one
    (``Recipe.resolve``)."""
    if source in BUILTIN_BANKS:
        return load_builtin_bank(source)
    path = resolve(source) if resolve is not None else Path(source)
    if not Path(path).is_file():
        raise PathNotFound(
            f"poses.source: pose bank {path} not found (built-in banks: {list(BUILTIN_BANKS)}; "
            "build one with `posedive posebank build`)"
        )
    return PoseBank.load(path)
