"""Finishing a release once every shard exists: totals, plots, dataset card, then the manifest.

Everything here is derived from the files of the release folder (shards, their stats and rejected
logs), never from the memory of the run that happens to finish it, so parts built on different
machines and copied together finish exactly as an uninterrupted build does.
"""

from __future__ import annotations

import logging

from .. import paths
from ..files import atomic_write_text, sha256_file
from ..plan import Plan
from ..recipe import Recipe
from ..schema import GeneratorInfo
from ..shards import iter_provenance, scan_shard
from ..sources import SourceIndex
from .card import render_card
from .manifest import FileEntry, Manifest, ShardEntry, ShardStats, SourceSummary, StageTotals, write_manifest
from .plots import write_release_plots

logger = logging.getLogger(__name__)


def _stages_identity(recipe: Recipe, plan: Plan, generator: GeneratorInfo | None,
                     estimator: str | None) -> tuple[GeneratorInfo, str]:
    """Which generator and estimator made the release, read back from a sample when this run
    loaded neither (it only found every shard already built)."""
    if generator is not None and estimator is not None:
        return generator, estimator
    shards = [paths.shard_path(recipe.release_dir, shard) for shard in range(plan.num_shards)]
    provenance = next(iter_provenance(shards), None)
    if provenance is not None:
        return GeneratorInfo(**provenance["generator"]), provenance["filter"]["estimator"]
    from ..builder.stages import load_estimator, load_generator

    return load_generator(recipe).info, load_estimator(recipe).name


def finalize_release(recipe: Recipe, plan: Plan, source: SourceIndex, generator: GeneratorInfo | None,
                     estimator: str | None) -> Manifest:
    root = recipe.release_dir
    generator, estimator = _stages_identity(recipe, plan, generator, estimator)
    shards, totals, short_pids = [], StageTotals(), set()
    for shard in range(plan.num_shards):
        stats = ShardStats.model_validate_json(paths.shard_stats_path(root, shard).read_text())
        totals = totals.add(stats.totals)
        short_pids.update(stats.short_pids)
        shard_file = paths.shard_path(root, shard)
        scan = scan_shard(shard_file)  # the sample count and the hash from one read of the file
        if scan.samples != stats.totals.accepted:
            raise RuntimeError(f"{shard_file}: holds {scan.samples} samples but its stats say {stats.totals.accepted}")
        shards.append(ShardEntry(path=paths.shard_name(shard), samples=scan.samples, sha256=scan.sha256,
                                 bytes=scan.bytes))

    coverage = write_release_plots(recipe, root, [paths.shard_path(root, shard) for shard in range(plan.num_shards)])
    manifest = Manifest(
        name=recipe.name,
        version=recipe.version,
        recipe_hash=recipe.hash,
        plan_hash=plan.hash,
        source=SourceSummary(dataset=source.dataset, format=source.format, counts=source.counts(),
                             junk=source.junk, unreadable=source.unreadable),
        generator=generator,
        estimator=estimator,
        condition_maps=list(recipe.output.condition_maps),
        image_format=recipe.output.image_format,
        shards=shards,
        totals=totals,
        identities=len({unit.pid for unit in plan.units}),
        short_pids=sorted(short_pids),
        viewpoint_entropy=coverage.viewpoint_entropy,
        files={},
    )
    atomic_write_text(root / paths.CARD, render_card(recipe, manifest, coverage.plots))
    sidecars = [paths.CARD, paths.RECIPE, *coverage.plots]
    sidecars += [paths.rejected_name(shard) for shard in range(plan.num_shards)]
    sidecars += [paths.shard_stats_path(root, shard).relative_to(root).as_posix() for shard in range(plan.num_shards)]
    manifest.files = {
        relpath: FileEntry(sha256=sha256_file(root / relpath), bytes=(root / relpath).stat().st_size)
        for relpath in sorted(sidecars)
    }
    write_manifest(root, manifest)
    logger.info("release %s %s finished: %d samples in %d shards at %s", recipe.name, recipe.version,
                manifest.samples, len(shards), root)
    return manifest
