"""Every path posedive names, in one place (readers and writers agree by importing these): the files
of a release, of an evaluation split folder, and posedive's cache folders."""

from __future__ import annotations

import os
from pathlib import Path

SPLIT = "train"
DATA_DIR = "data"
SHARD_GLOB = f"{DATA_DIR}/{SPLIT}-*.tar"
MANIFEST = "manifest.json"
RECIPE = "recipe.yaml"
CARD = "README.md"
REJECTED_DIR = "rejected"
PLOTS_DIR = "plots"
BUILD_DIR = ".build"  # working files of an unfinished build; not part of the release


def shard_name(shard: int) -> str:
    return f"{DATA_DIR}/{SPLIT}-{shard:05d}.tar"


def shard_path(release_dir: Path, shard: int) -> Path:
    return release_dir / shard_name(shard)


def rejected_name(shard: int) -> str:
    return f"{REJECTED_DIR}/{SPLIT}-{shard:05d}.jsonl"


def shard_stats_path(release_dir: Path, shard: int) -> Path:
    """Per-shard counts, kept beside the rejected log so parts copied together carry their stats."""
    return release_dir / REJECTED_DIR / f"{SPLIT}-{shard:05d}.stats.json"


def plan_path(release_dir: Path) -> Path:
    return release_dir / BUILD_DIR / "plan.jsonl"


# ------------------------------------------------------------------------------ evaluation splits
# A split folder (``posedive splits``) holds one CSV table per evaluation split and the report.
EVAL_SPLITS: tuple[str, ...] = ("train", "query", "gallery")
SPLIT_REPORT = "split.json"


def split_table_name(split: str) -> str:
    return f"{split}.csv"


def split_folder_files() -> list[str]:
    """Every file of a split folder: the tables in ``EVAL_SPLITS`` order, then the report."""
    return [split_table_name(split) for split in EVAL_SPLITS] + [SPLIT_REPORT]


# ----------------------------------------------------------------------------------------- caches
CACHE_ENV = "POSEDIVE_CACHE_DIR"


def cache_dir() -> Path:
    """posedive's cache root: ``$POSEDIVE_CACHE_DIR`` or ``~/.cache/posedive``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "posedive")).expanduser()
