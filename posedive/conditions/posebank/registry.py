"""The registry of pose-bank importers, and how a recipe's ``poses`` section becomes a bank file.

A recipe's ``poses.kind`` (and ``posedive posebank build --format``) names a built-in bank
(``kind: builtin``), a bank file (``kind: file``) or an importer registered here. An importer reads
its input files into a bank; mirroring and de-duplication follow, the same way for every importer
(``import_bank``). A bank a recipe imports at build time is cached under ``cache_dir()`` by the
content of its input files and its options, so it is imported once however often it is built.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from pydantic import ValidationError

from ...errors import InputError, PathNotFound
from ...files import sha256_file
from ...paths import imported_bank_cache
from ...recipe import AmassPoses, BvhPoses, FitsPoses, ImagesPoses, ImportedPoses
from .builtin import BUILTIN_BANKS, builtin_bank_path, load_builtin_bank
from .format import BANK_FORMAT, DEFAULT_DEDUP_M, PoseBank, combine

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BankImporter:
    name: str
    description: str
    config: type[ImportedPoses]
    run: Callable[..., PoseBank]  # (input paths, **the config's importer_options()) -> bank
    # Bumped whenever the importer's output changes, so banks cached from the same inputs are rebuilt.
    version: int = 1


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
    from .images import bank_from_images

    return combine(bank_from_images(path, licence=licence) for path in paths)


IMPORTERS: dict[str, BankImporter] = {
    entry.name: entry
    for entry in (
        BankImporter("amass", "AMASS-style .npz sequences (SMPL / SMPL-H / SMPL-X body poses), z-up",
                     AmassPoses, _amass),
        BankImporter("fits", "SMPL fits (.npz / .json per sequence, or a folder per sequence), camera frame",
                     FitsPoses, _fits),
        BankImporter("bvh", "BVH motion capture", BvhPoses, _bvh),
        BankImporter("images", "the people in photographs, a folder of them or a fixed-camera video, fitted",
                     ImagesPoses, _images),
    )
}


def bank_importer(name: str) -> BankImporter:
    """The importer ``name``; an unknown name is an error that lists the importers and built-in banks."""
    if name not in IMPORTERS:
        raise InputError(f"unknown pose bank importer {name!r}; importers: {', '.join(IMPORTERS)} "
                         f"(built-in banks: {', '.join(BUILTIN_BANKS)})")
    return IMPORTERS[name]


def import_config(name: str, paths: Sequence[Path], **options) -> ImportedPoses:
    """The recipe's ``poses`` section that imports ``paths`` with importer ``name`` (options left
    out or ``None`` take the importer's defaults)."""
    importer = bank_importer(name)
    given = {key: value for key, value in options.items() if value is not None}
    try:
        return importer.config(kind=importer.name, paths=list(paths), **given)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors())
        raise InputError(f"pose bank importer {name!r}: {problems}") from None


def _inputs(config: ImportedPoses, resolve: Callable[[Path], Path] | None) -> list[Path]:
    paths = [resolve(p) if resolve is not None else Path(p) for p in config.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise PathNotFound(f"poses.paths: inputs not found: {', '.join(missing)}")
    return paths


def import_bank(config: ImportedPoses, resolve: Callable[[Path], Path] | None = None) -> PoseBank:
    """Run the importer a ``poses`` section names over its inputs, then add mirrored poses and drop
    near-duplicates. ``resolve`` turns relative input paths into absolute ones (``Recipe.resolve``)."""
    bank = bank_importer(config.kind).run(_inputs(config, resolve), **config.importer_options())
    if config.mirror:
        bank = bank.with_mirrors()
    return bank.deduplicated(DEFAULT_DEDUP_M if config.dedup_m is None else config.dedup_m)


def _content(path: Path) -> object:
    """What an input contributes to an imported bank: its name and the hash of every file in it."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return [path.name, [[p.relative_to(path).as_posix(), sha256_file(p)] for p in files]]
    return [path.name, sha256_file(path)]


def imported_bank_path(config: ImportedPoses, resolve: Callable[[Path], Path] | None = None) -> Path:
    """Where the bank a ``poses`` section imports is cached: named by the importer, its version, the
    options and the content of the inputs (not where they lie)."""
    importer = bank_importer(config.kind)
    paths = _inputs(config, resolve)
    options = config.model_dump(mode="json", exclude={"paths", "sampling"})
    key = {"importer": importer.name, "version": importer.version, "bank_format": BANK_FORMAT, "options": options,
           "inputs": [_content(p) for p in paths]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return imported_bank_cache(importer.name, digest)


def recipe_bank_path(poses, resolve: Callable[[Path], Path] | None = None) -> Path:
    """The bank file a recipe's ``poses`` section names, building (built-in) or importing it into the
    cache on first use; a bank file is checked to be readable."""
    if poses.kind == "builtin":
        load_builtin_bank(poses.name)
        return builtin_bank_path(poses.name)
    if poses.kind == "file":
        path = resolve(poses.path) if resolve is not None else Path(poses.path)
        if not Path(path).is_file():
            raise PathNotFound(f"poses: pose bank {path} not found (build one with `posedive posebank build`)")
        PoseBank.load(path)
        return Path(path)
    path = imported_bank_path(poses, resolve)
    if not path.is_file():
        logger.info("importing the recipe's %s poses into %s (once)", poses.kind, path)
        import_bank(poses, resolve).save(path)
    return path


def load_recipe_bank(poses, resolve: Callable[[Path], Path] | None = None) -> PoseBank:
    """The bank a recipe's ``poses`` section names (see ``recipe_bank_path``)."""
    return PoseBank.load(recipe_bank_path(poses, resolve))


def load_pose_bank(source: str, resolve=None) -> PoseBank:
    """A bank named as recipes named it before ``poses.kind`` (``poses.source``): a built-in bank name
    or a path to a posedive ``.npz`` bank. ``resolve`` turns a relative path into an absolute one."""
    if source in BUILTIN_BANKS:
        return load_builtin_bank(source)
    path = resolve(source) if resolve is not None else Path(source)
    if not Path(path).is_file():
        raise PathNotFound(
            f"poses.source: pose bank {path} not found (built-in banks: {list(BUILTIN_BANKS)}; "
            "build one with `posedive posebank build`)"
        )
    return PoseBank.load(path)
