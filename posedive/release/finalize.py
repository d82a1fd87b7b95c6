"""Finishing a release once every shard exists and passes its checks: totals, plots, card, then the manifest.

Everything here is derived from the files of the release folder (shards, their stats and rejected
logs), never from the memory of the run that happens to finish it, so parts built on different
machines and copied together finish exactly as an uninterrupted build does. No manifest is written
over a shard that fails its checks against the plan (``posedive.release.shard_check``).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Mapping

from .. import paths
from ..errors import ReleaseError
from ..plan import Plan
from ..recipe import Recipe
from ..sources import SourceIndex
from ..storage import Store, open_store
from .card import render_card
from .manifest import FileEntry, Manifest, ShardEntry, SourceSummary, StageTotals, write_manifest
from .plots import QUALITY_PLOT, ReleaseCoverage, plot_quality, read_release_records, write_release_plots
from .quality import ReleaseQuality, read_rejected, release_quality
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
    store = open_store(recipe.release_location)
    missing = [shard for shard in range(plan.num_shards) if not store.is_file(paths.shard_name(shard))]
    if missing:
        raise ReleaseError(f"{store.url('')}: shards {missing} are not built yet", hint="run `posedive build RECIPE`")
    checker = ShardChecker(store, recipe, plan)
    return {shard: checker.check(shard) for shard in range(plan.num_shards)}


def _write_plots(recipe: Recipe, store: Store, records: list[dict], shard_of: dict,
                 quality: ReleaseQuality) -> tuple[ReleaseCoverage, list[str]]:
    """Draw the release's plots into its folder; a remote release's are drawn into a temporary local
    folder first (matplotlib writes files) and then stored, each atomically."""

    def draw(folder: Path) -> tuple[ReleaseCoverage, list[str]]:
        coverage = write_release_plots(recipe, folder, records, shard_of)
        plot_quality(quality, folder / QUALITY_PLOT)
        return coverage, [*coverage.plots, QUALITY_PLOT]

    if store.local:
        return draw(store.local_path())
    with tempfile.TemporaryDirectory(prefix="posedive-plots-") as folder:
        coverage, plots = draw(Path(folder))
        for relpath in plots:
            store.write_bytes(relpath, (Path(folder) / relpath).read_bytes())
    return coverage, plots


def finalize_release(recipe: Recipe, plan: Plan, source: SourceIndex,
                     checks: Mapping[int, ShardCheck] | None = None) -> Manifest:
    """Write the plots, the card and the manifest of a release whose shards all pass their checks.

    ``checks`` are those of this folder's shards made by the caller (each shard is then read only
    once); by default every shard is checked here."""
    store = open_store(recipe.release_location)
    root = store.url("")
    if checks is None:
        checks = check_all_shards(recipe, plan)
    failed = [checks[shard].rejection for shard in range(plan.num_shards) if not checks[shard].ok]
    if failed:
        raise ReleaseError(f"{root}: {len(failed)} shard(s) fail their checks against the plan: "
                           + "; ".join(rejection.describe() for rejection in failed),
                           hint=f"run `posedive build RECIPE`: it moves them aside into {paths.REJECTED_SHARDS_DIR}/ "
                                f"and rebuilds them")
    stages = release_stages(recipe, checks)
    shard_files = [store.file(paths.shard_name(shard)) for shard in range(plan.num_shards)]
    shards, totals, short_pids = [], StageTotals(), set()
    # Images are checked lazily by the workers that load them: the release lists every one they met.
    unreadable = set(source.unreadable)
    for shard in range(plan.num_shards):
        check = checks[shard]
        totals = totals.add(check.stats.totals)
        short_pids.update(check.stats.short_pids)
        unreadable.update(image.image for image in check.stats.unreadable)
        shards.append(ShardEntry(path=paths.shard_name(shard), samples=check.scan.samples, sha256=check.scan.sha256,
                                 bytes=check.scan.bytes))

    records, shard_of = read_release_records(shard_files)  # read once: the quality report and the plots
    quality = release_quality(records, read_rejected(store, range(plan.num_shards)), totals,
                              stages.generator.id, stages.generator.sha256)
    coverage, plots = _write_plots(recipe, store, records, shard_of, quality)
    manifest = Manifest(
        name=recipe.name,
        version=recipe.version,
        recipe_hash=recipe.hash,
        plan_hash=plan.hash,
        source=SourceSummary(dataset=source.dataset, format=source.format, counts=source.counts(),
                             junk=source.junk, unreadable=sorted(unreadable)),
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
    store.write_text(paths.CARD, render_card(recipe, manifest, plots))
    sidecars = [paths.CARD, paths.RECIPE, *plots]
    sidecars += [paths.rejected_name(shard) for shard in range(plan.num_shards)]
    sidecars += [paths.shard_stats_name(shard) for shard in range(plan.num_shards)]
    manifest.files = {relpath: FileEntry(sha256=store.sha256(relpath), bytes=store.size(relpath))
                      for relpath in sorted(sidecars)}
    write_manifest(store, manifest)
    logger.info("release %s %s finished: %d samples in %d shards at %s", recipe.name, recipe.version,
                manifest.samples, len(shards), root)
    return manifest
