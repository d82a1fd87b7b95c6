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
# The release's plots (``PLOTS_DIR``), in the order the card shows them.
RELEASE_PLOTS: tuple[str, ...] = (f"{PLOTS_DIR}/viewpoints.png", f"{PLOTS_DIR}/poses.png", f"{PLOTS_DIR}/bodies.png",
                                  f"{PLOTS_DIR}/samples.png")
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
CHUNKS_DIR = f"{BUILD_DIR}/chunks"  # finished chunks of shards built in several (deleted once the shard is)
REJECTED_CHUNKS_DIR = f"{BUILD_DIR}/rejected-chunks"  # chunks that failed their checks, moved aside


def condition_member(name: str) -> str:
    """The member of a shard's sample holding the condition map ``name`` (a PNG)."""
    return f"{name}.png"


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


def chunk_files(shard: int, chunk: int) -> tuple[str, str, str]:
    """The files one finished chunk of a shard is kept in until its shard is assembled, in the order a
    worker writes them: its rejected log, its samples (a tar) and its receipt, last, which marks the
    chunk as done and holds the hashes of the other two."""
    stem = f"{CHUNKS_DIR}/{SPLIT}-{shard:05d}.chunk-{chunk:04d}"
    return f"{stem}.rejected.jsonl", f"{stem}.tar", f"{stem}.json"


def rejected_chunk_name(relpath: str, reason: str, copy: int = 1) -> str:
    """Where a file of a chunk that failed its checks is moved: ``<name>.<reason>`` in
    ``REJECTED_CHUNKS_DIR`` (``<name>.<reason>-<copy>`` when that name is taken)."""
    suffix = reason if copy == 1 else f"{reason}-{copy}"
    return f"{REJECTED_CHUNKS_DIR}/{Path(relpath).name}.{suffix}"


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


# ------------------------------------------------------------------------- statistics and coverage
# ``posedive stats`` writes its report and plots into one folder.
STATS_REPORT = "stats.json"
STATS_ORIENTATION_PLOT = "orientation.png"
STATS_POSES_PLOT = "poses.png"


def stats_poses_name(slug: str) -> str:
    """The per-image poses of one input of a stats report (JSON lines)."""
    return f"{slug}.poses.jsonl"


def stats_cameras_plot_name(slug: str) -> str:
    return f"{slug}.cameras.png"


# ``posedive report`` writes a recipe's coverage into ``<output.dir>/<name>/coverage/<version>/``.
COVERAGE_DIR = "coverage"
COVERAGE_REPORT = "coverage.json"
COVERAGE_VIEWPOINTS_PLOT = "viewpoints.png"
COVERAGE_POSES_PLOT = "poses.png"
COVERAGE_BODIES_PLOT = "bodies.png"  # the body-shape panel (posedive.conditions.body_panel)


def coverage_dir(releases_dir: Path, version: str) -> Path:
    """Where ``posedive report`` writes by default: beside the release folders of the recipe's name."""
    return releases_dir / COVERAGE_DIR / version


# ------------------------------------------------------------------------------------- generators
GENERATOR_METADATA = "posedive_generator.json"  # what a generator folder says about itself
GUIDER_CONFIG = "pose_guider/config.json"  # the pose guider's config, condition contract included

# ---------------------------------------------------------------------------------------- exports
# ``posedive export`` adds these beside the Market-1501 folders it writes.
EXPORT_MAPPING = "posedive_generated.csv"  # every exported generated image and the sample it came from
EXPORT_RECORD = "posedive_export.json"  # what was exported, from which release

# ----------------------------------------------------------------------------------------- caches
CACHE_ENV = "POSEDIVE_CACHE_DIR"
CONDITIONS_CACHE = "conditions"  # rendered condition sets, by condition id
POSE_CACHE = "poses"  # pose estimator answers, by image content
POSE_CACHE_DB = "poses.sqlite"
SHAPE_CACHE = "shapes"  # identity body shapes, by image content and settings
POSEBANK_CACHE = "posebanks"  # built-in banks, and imported ones under ``imported/``


def cache_dir() -> Path:
    """posedive's cache root: ``$POSEDIVE_CACHE_DIR`` or ``~/.cache/posedive``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "posedive")).expanduser()


def cache_entry(folder: Path, key: str, suffix: str) -> Path:
    """A content-addressed cache entry: ``<folder>/<key[:2]>/<key><suffix>`` (256 subfolders keep
    folders small)."""
    return folder / key[:2] / f"{key}{suffix}"


def builtin_bank_cache(name: str, version: int) -> Path:
    return cache_dir() / POSEBANK_CACHE / f"{name}-v{version}.npz"


def imported_bank_cache(importer: str, digest: str) -> Path:
    return cache_dir() / POSEBANK_CACHE / "imported" / f"{importer}-{digest[:24]}.npz"
