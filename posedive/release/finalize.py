"""Finishing a release once every shard exists: totals, plots, dataset card, then the manifest.

Everything here is derived from the files of the release folder (shards, their stats and rejected
logs), never from the memory of the run that happens to finish it, so parts built on different
machines and copied together finish exactly as an uninterrupted build does.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import paths
from ..errors import ReleaseError
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


def _stages_identity(root: Path, stats: list[ShardStats], shard_files: list[Path]) -> tuple[GeneratorInfo, str]:
    """Which generator and estimator made the release: as the shards' stats record them, or, for stats
    written before they did, as a sample's provenance says."""
    for shard_stats in stats:
        if shard_stats.generator is not None and shard_stats.estimator is not None:
            return shard_stats.generator, shard_stats.estimator
    provenance = next(iter_provenance(shard_files), None)
    if provenance is not None:
        return GeneratorInfo(**provenance["generator"]), provenance["filter"]["estimator"]
    raise ReleaseError(
        f"{root}: no shard's stats ({paths.REJECTED_DIR}/*.stats.json) name the generator and estimator that "
        f"built it, and no shard holds a sample that would",
        hint=f"delete {paths.DATA_DIR}/ and {paths.REJECTED_DIR}/ in that folder and run `posedive build RECIPE` "
             f"again to rebuild the shards",
    )


def finalize_release(recipe: Recipe, plan: Plan, source: SourceIndex) -> Manifest:
    root = recipe.release_dir
    shard_files = [paths.shard_path(root, shard) for shard in range(plan.num_shards)]
    stats = [ShardStats.model_validate_json(paths.shard_stats_path(root, shard).read_text())
             for shard in range(plan.num_shards)]
    generator, estimator = _stages_identity(root, stats, shard_files)
    shards, totals, short_pids = [], StageTotals(), set()
    for shard, (shard_stats, shard_file) in enumerate(zip(stats, shard_files)):
        totals = totals.add(shard_stats.totals)
        short_pids.update(shard_stats.short_pids)
        scan = scan_shard(shard_file)  # the sample count and the hash from one read of the file
        if scan.samples != shard_stats.totals.accepted:
            raise ReleaseError(f"{shard_file}: holds {scan.samples} samples but its stats "
                               f"({paths.shard_stats_path(root, shard)}) say {shard_stats.totals.accepted}",
                               hint="delete both files and run `posedive build RECIPE` again to rebuild that shard")
        shards.append(ShardEntry(path=paths.shard_name(shard), samples=scan.samples, sha256=scan.sha256,
                                 bytes=scan.bytes))

    coverage = write_release_plots(recipe, root, shard_files)
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
