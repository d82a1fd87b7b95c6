"""Finishing a release once every shard exists and passes its checks: totals, plots, card, then the manifest.

Everything here is derived from the files of the release folder (shards, their stats and rejected
logs), never from the memory of the run that happens to finish it, so parts built on different
machines and copied together finish exactly as an uninterrupted build does. No manifest is written
over a shard that fails its checks against the plan (``posedive.release.shard_check``).
"""

from __future__ import annotations

import logging
from typing import Mapping

from .. import paths
from ..errors import ReleaseError
from ..files import atomic_write_text, sha256_file
from ..plan import Plan
from ..recipe import Recipe
from ..shards import iter_provenance
from ..sources import SourceIndex
from .card import render_card
from .manifest import FileEntry, Manifest, ShardEntry, SourceSummary, StageTotals, write_manifest
from .plots import QUALITY_PLOT, plot_quality, write_release_plots
from .quality import read_rejected, release_quality
from .shard_check import ShardCheck, ShardChecker, ShardStages, agreed_stages

logger = logging.getLogger(__name__)


def release_stages(recipe: Recipe, checks: Mapping[int, ShardCheck]) -> ShardStages:
    """The generator and estimator that made the release, which every shard must agree on."""
    stages, disagreeing = agreed_stages(checks.values())
    if disagreeing:
        raise ReleaseError(f"{recipe.release_dir}: shards made by other stages than the rest: "
                           + "; ".join(rejection.describe() for rejection in disagreeing),
                           hint="run `posedive build RECIPE`: it moves them aside and rebuilds them")
    if stages is None:
        raise ReleaseError(
            f"{recipe.release_dir}: no shard's stats ({paths.REJECTED_DIR}/*.stats.json) name the generator and "
            f"estimator that built it, and no shard holds a sample that would",
            hint=f"delete {paths.DATA_DIR}/ and {paths.REJECTED_DIR}/ in that folder and run `posedive build RECIPE` "
                 f"again to rebuild the shards",
        )
    return stages


def check_all_shards(recipe: Recipe, plan: Plan) -> dict[int, ShardCheck]:
    """Check every shard of the plan; a missing shard is an error."""
    root = recipe.release_dir
    missing = [shard for shard in range(plan.num_shards) if not paths.shard_path(root, shard).is_file()]
    if missing:
        raise ReleaseError(f"{root}: shards {missing} are not built yet", hint="run `posedive build RECIPE`")
    checker = ShardChecker(root, recipe, plan)
    return {shard: checker.check(shard) for shard in range(plan.num_shards)}


def finalize_release(recipe: Recipe, plan: Plan, source: SourceIndex,
                     checks: Mapping[int, ShardCheck] | None = None) -> Manifest:
    """Write the plots, the card and the manifest of a release whose shards all pass their checks.

    ``checks`` are those of this folder's shards made by the caller (each shard is then read only
    once); by default every shard is checked here."""
    root = recipe.release_dir
    if checks is None:
        checks = check_all_shards(recipe, plan)
    failed = [checks[shard].rejection for shard in range(plan.num_shards) if not checks[shard].ok]
    if failed:
        raise ReleaseError(f"{root}: {len(failed)} shard(s) fail their checks against the plan: "
                           + "; ".join(rejection.describe() for rejection in failed),
                           hint=f"run `posedive build RECIPE`: it moves them aside into {paths.REJECTED_SHARDS_DIR}/ "
                                f"and rebuilds them")
    stages = release_stages(recipe, checks)
    shard_files = [paths.shard_path(root, shard) for shard in range(plan.num_shards)]
    shards, totals, short_pids = [], StageTotals(), set()
    for shard in range(plan.num_shards):
        check = checks[shard]
        totals = totals.add(check.stats.totals)
        short_pids.update(check.stats.short_pids)
        shards.append(ShardEntry(path=paths.shard_name(shard), samples=check.scan.samples, sha256=check.scan.sha256,
                                 bytes=check.scan.bytes))

    coverage = write_release_plots(recipe, root, shard_files)
    quality = release_quality(list(iter_provenance(shard_files)), read_rejected(root, range(plan.num_shards)), totals,
                              stages.generator.id, stages.generator.sha256)
    plot_quality(quality, root / QUALITY_PLOT)
    plots = [*coverage.plots, QUALITY_PLOT]
    manifest = Manifest(
        name=recipe.name,
        version=recipe.version,
        recipe_hash=recipe.hash,
        plan_hash=plan.hash,
        source=SourceSummary(dataset=source.dataset, format=source.format, counts=source.counts(),
                             junk=source.junk, unreadable=source.unreadable),
        generator=stages.generator,
        estimator=stages.estimator,
        condition_maps=list(recipe.output.condition_maps),
        image_format=recipe.output.image_format,
        shards=shards,
        totals=totals,
        identities=len({unit.pid for unit in plan.units}),
        short_pids=sorted(short_pids),
        viewpoint_entropy=coverage.viewpoint_entropy,
        quality=quality,
        files={},
    )
    atomic_write_text(root / paths.CARD, render_card(recipe, manifest, plots))
    sidecars = [paths.CARD, paths.RECIPE, *plots]
    sidecars += [paths.rejected_name(shard) for shard in range(plan.num_shards)]
    sidecars += [paths.shard_stats_name(shard) for shard in range(plan.num_shards)]
    manifest.files = {
        relpath: FileEntry(sha256=sha256_file(root / relpath), bytes=(root / relpath).stat().st_size)
        for relpath in sorted(sidecars)
    }
    write_manifest(root, manifest)
    logger.info("release %s %s finished: %d samples in %d shards at %s", recipe.name, recipe.version,
                manifest.samples, len(shards), root)
    return manifest
