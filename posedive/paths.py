"""Every path posedive names, in one place (readers and writers agree by importing these): the files
of a release, the build state kept beside them, an evaluation split folder's files, and posedive's
cache folders."""

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
HUB_RECORD = "hub.json"  # where the release was published (``posedive push``); not part of the release
# Files and folders posedive keeps in a release folder that are not part of the release: the manifest
# does not list them, verifying does not report them and publishing does not upload them.
LOCAL_STATE: tuple[str, ...] = (BUILD_DIR, HUB_RECORD)
RECIPE_HASH_MARKER = f"{BUILD_DIR}/recipe_hash"  # the hash of the recipe an unfinished build is building
PLAN = f"{BUILD_DIR}/plan.jsonl"
BUILD_LOCK = f"{BUILD_DIR}/lock"  # held for a moment while a build claims shards or gives them back
CLAIMS_DIR = f"{BUILD_DIR}/claims"  # one file per running build: its pid, host and shards
REJECTED_SHARDS_DIR = f"{BUILD_DIR}/rejected-shards"  # shards that failed their checks, moved aside


def shard_name(shard: int) -> str:
    return f"{DATA_DIR}/{SPLIT}-{shard:05d}.tar"


def shard_path(release_dir: Path, shard: int) -> Path:
    return release_dir / shard_name(shard)


def rejected_name(shard: int) -> str:
    return f"{REJECTED_DIR}/{SPLIT}-{shard:05d}.jsonl"


def shard_stats_name(shard: int) -> str:
    """Per-shard counts, kept beside the rejected log so parts copied together carry their stats."""
    return f"{REJECTED_DIR}/{SPLIT}-{shard:05d}.stats.json"


def shard_stats_path(release_dir: Path, shard: int) -> Path:
    return release_dir / shard_stats_name(shard)


def shard_files(shard: int) -> tuple[str, str, str]:
    """The files one shard is made of, in the order a build writes them (the shard itself last)."""
    return rejected_name(shard), shard_stats_name(shard), shard_name(shard)


def release_level_files() -> tuple[str, ...]:
    """The files a build writes once per release rather than once per shard (plots aside: they are
    written in place, once the manifest's other files exist)."""
    return RECIPE_HASH_MARKER, PLAN, RECIPE, CARD, MANIFEST


def plan_path(release_dir: Path) -> Path:
    return release_dir / PLAN


def rejected_shard_name(relpath: str, reason: str, copy: int = 1) -> str:
    """Where a file of a shard that failed its checks is moved: ``<name>.<reason>`` in
    ``REJECTED_SHARDS_DIR`` (``<name>.<reason>-<copy>`` when that name is taken)."""
    suffix = reason if copy == 1 else f"{reason}-{copy}"
    return f"{REJECTED_SHARDS_DIR}/{Path(relpath).name}.{suffix}"


def is_local_state(relpath: str) -> bool:
    """Whether a path of a release folder (relative, POSIX) is posedive's own state, not release data."""
    return relpath.split("/", 1)[0] in LOCAL_STATE


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
