"""The pose banks built into posedive, by name, each built once and cached under ``cache_dir()``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ... import paths
from ...errors import InputError
from .deepmimic import build_deepmimic_bank
from .format import DEFAULT_DEDUP_M, PoseBank
from .variations import build_variations

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuiltinBank:
    name: str
    # Bumped whenever the bank's poses or stored fields change, so cached copies are rebuilt.
    version: int
    description: str
    build: Callable[..., PoseBank]


def build_pedestrian_bank(dedup_m: float = DEFAULT_DEDUP_M, mirror: bool = True) -> PoseBank:
    """The DeepMimic bank plus the standing and walking variations (mirrored with it; the variations
    are made distinct, so only the clips are de-duplicated)."""
    variations = build_variations()
    return build_deepmimic_bank(dedup_m=dedup_m, mirror=mirror).merged(variations.with_mirrors() if mirror else variations)


BUILTIN_BANKS: dict[str, BuiltinBank] = {
    bank.name: bank
    for bank in (
        BuiltinBank("pedestrian", 1, "the deepmimic bank plus standing and walking variations of its walk: arm swing, "
                    "carrying, phones, hands in pockets, head turns", build_pedestrian_bank),
        BuiltinBank("deepmimic", 2, "the 15 DeepMimic motion clips of the pybullet wheel, mirrored and de-duplicated",
                    build_deepmimic_bank),
    )
}


def builtin_bank(name: str) -> BuiltinBank:
    """The built-in bank ``name``; an unknown name is an error that lists the built-in banks."""
    if name not in BUILTIN_BANKS:
        raise InputError(f"unknown built-in pose bank {name!r}; built-in banks: {', '.join(BUILTIN_BANKS)}")
    return BUILTIN_BANKS[name]


def builtin_bank_path(name: str = "deepmimic") -> Path:
    bank = builtin_bank(name)
    return paths.builtin_bank_cache(bank.name, bank.version)


def load_builtin_bank(name: str = "deepmimic", *, rebuild: bool = False) -> PoseBank:
    """The built-in bank, built and cached on first use."""
    path = builtin_bank_path(name)
    if path.is_file() and not rebuild:
        return PoseBank.load(path)
    logger.info("building the built-in %s pose bank into %s (once)", name, path)
    bank = builtin_bank(name).build()
    bank.save(path)
    return bank
