"""Building a release: plan, build the missing shards of a part on an engine, finalise when all are there.

Crash safety comes from the layout, not from bookkeeping: a shard exists only once it is complete
(written under a temporary name and renamed), its rejected log and stats are written before it, and
the manifest is written last. A killed build therefore resumes by building the shards that do not
exist yet, and a finished release (one with a manifest) is never touched again.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import paths
from ..files import atomic_write_text
from ..plan import Plan, make_plan, part_shards
from ..recipe import Recipe
from ..release import Manifest, ReleaseError
from ..release.finalize import finalize_release
from ..shards import remove_stale_temporaries, write_shard
from ..sources import SourceIndex, read_source
from .engine import LocalEngine, ShardEngine
from .progress import BuildProgress
from .shard_job import ShardResult, rejected_jsonl
from .stages import BuildStages, load_conditions, load_stages

logger = logging.getLogger(__name__)

RECIPE_HASH_FILE = "recipe_hash"


@dataclass
class BuildReport:
    release_dir: Path
    plan: Plan
    source: SourceIndex
    built_shards: list[int] = field(default_factory=list)
    skipped_shards: list[int] = field(default_factory=list)
    missing_shards: list[int] = field(default_factory=list)
    manifest: Manifest | None = None
    already_complete: bool = False
    seconds: float = 0.0


def recipe_text(recipe: Recipe) -> str:
    """The recipe as the user wrote it (or its canonical YAML when it was built in Python)."""
    if recipe.source_file is not None:
        return recipe.source_file.read_text()
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)


def check_release_folder(recipe: Recipe) -> Manifest | None:
    """Refuse to mix recipes in one release folder; return the manifest of a finished release."""
    release_dir = recipe.release_dir
    manifest_file = release_dir / paths.MANIFEST
    if manifest_file.is_file():
        manifest = Manifest.model_validate_json(manifest_file.read_text())
        if manifest.recipe_hash != recipe.hash:
            raise ReleaseError(
                f"{release_dir} is a finished release of {recipe.name} {recipe.version} built from a different "
                f"recipe (hash {manifest.recipe_hash[:12]}, yours {recipe.hash[:12]}); releases are immutable: "
                f"bump `version` in the recipe"
            )
        return manifest
    marker = release_dir / paths.BUILD_DIR / RECIPE_HASH_FILE
    if marker.is_file() and marker.read_text().strip() != recipe.hash:
        raise ReleaseError(
            f"{release_dir} holds an unfinished build of a different recipe (hash {marker.read_text().strip()[:12]}, "
            f"yours {recipe.hash[:12]}); delete that folder or bump `version` in the recipe"
        )
    return None


def _prepare_folder(recipe: Recipe, plan: Plan) -> None:
    release_dir = recipe.release_dir
    (release_dir / paths.BUILD_DIR).mkdir(parents=True, exist_ok=True)
    atomic_write_text(release_dir / paths.BUILD_DIR / RECIPE_HASH_FILE, recipe.hash + "\n")
    atomic_write_text(release_dir / paths.RECIPE, recipe_text(recipe))
    plan.write(paths.plan_path(release_dir))
    removed = remove_stale_temporaries(release_dir)
    if removed:
        logger.info("removed %d partial file(s) left by an interrupted build", removed)


def complete_shards(release_dir: Path, num_shards: int) -> set[int]:
    return {shard for shard in range(num_shards) if paths.shard_path(release_dir, shard).is_file()}


def write_shard_outputs(release_dir: Path, result: ShardResult) -> None:
    """Write one built shard; idempotent, since the same shard always gives the same bytes.

    Sidecars first, shard last: the shard's existence marks the whole shard as done.
    """
    shard = result.shard
    atomic_write_text(release_dir / paths.rejected_name(shard), rejected_jsonl(result.rejected))
    atomic_write_text(paths.shard_stats_path(release_dir, shard), result.stats.model_dump_json(indent=2) + "\n")
    write_shard(release_dir, shard, result.samples)


def build_release(
    recipe: Recipe,
    *,
    stages: BuildStages | None = None,
    part: tuple[int, int] | None = None,
    dry_run: bool = False,
    show_progress: bool = True,
    engine: ShardEngine | None = None,
) -> BuildReport:
    """Build (or resume, or finish) the release a recipe describes.

    ``stages`` defaults to the real stages named by the recipe; they are loaded only when needed
    (planning needs only the pose bank). With ``part=(i, N)`` only that part's shards are built; the
    release is finalised by whichever run finds every shard complete. ``engine`` builds the shards:
    by default a ``LocalEngine`` over ``stages``, here; ``posedive.builder.ray_engine.RayEngine``
    builds them on a Ray cluster with stages it creates in its own workers (``stages``, if given,
    then serve planning only). Whatever the engine, this function writes each shard as it arrives and
    finishes the release from the files alone.
    """
    started = time.perf_counter()
    existing = check_release_folder(recipe)
    source = read_source(recipe.source, recipe.base_dir)
    conditions = stages.conditions if stages is not None else load_conditions(recipe)
    plan = make_plan(recipe, source, conditions.pose_ids())
    report = BuildReport(release_dir=recipe.release_dir, plan=plan, source=source)
    if existing is not None:
        report.manifest, report.already_complete = existing, True
        return report
    if dry_run:
        return report

    release_dir = recipe.release_dir
    _prepare_folder(recipe, plan)
    done = complete_shards(release_dir, plan.num_shards)
    wanted = part_shards(plan.num_shards, part)
    todo = [shard for shard in wanted if shard not in done]
    report.skipped_shards = [shard for shard in wanted if shard in done]
    if todo:
        if engine is None:
            engine = LocalEngine(stages if stages is not None else functools.partial(load_stages, recipe, conditions))
        units_todo = sum(len(plan.shard_units(shard)) for shard in todo)
        with BuildProgress(units_todo, enabled=show_progress) as progress:
            for result in engine.build_shards(recipe, source, plan, todo, progress.record):
                write_shard_outputs(release_dir, result)
                progress.settle(result.events)
                report.built_shards.append(result.shard)

    done = complete_shards(release_dir, plan.num_shards)
    report.missing_shards = [shard for shard in range(plan.num_shards) if shard not in done]
    if not report.missing_shards:
        report.manifest = finalize_release(recipe, plan, source)
    report.seconds = time.perf_counter() - started
    return report
