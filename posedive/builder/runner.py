"""Building a release: plan, build the missing shards of a part on an engine, finalise when all are there.

Crash safety comes from the layout, not from bookkeeping: a shard exists only once it is complete
(written under a temporary name and renamed), its rejected log and stats are written before it, and
the manifest is written last. A killed build therefore resumes by building the shards that do not
exist yet (keeping the finished chunks of those built in chunks: ``posedive.builder.chunk_store``),
and a finished release (one with a manifest) is never touched again.

A shard on disk is trusted only once it passes its checks against the plan
(``posedive.release.shard_check``): a build checks the existing shards of its part before skipping
them, and the run that finishes checks every shard before it writes the manifest. A shard that fails
is moved aside into ``.build/rejected-shards/`` and rebuilt, and the report lists it.

A build claims its shards first (``posedive.builder.claims``), so two builds never write the same
shard, and it only ever touches files posedive names: a folder at the release's place that holds no
posedive build state is refused, and clean-up deletes only the temporary names of posedive's own
files (of the shards it claimed, and of the release's files when no other build is running).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import yaml

from .. import paths
from ..files import remove_temporaries
from ..plan import Plan, make_plan, part_shards
from ..recipe import Recipe
from ..release import Manifest, ReleaseError, read_manifest
from ..release.finalize import finalize_release
from ..release.remote import check_store_access
from ..release.shard_check import ShardCheck, ShardChecker, ShardRejection, ShardStages, agreed_stages, move_aside
from ..schema import ConditionRenderer
from ..sources import SourceIndex, read_source
from ..storage import Store, is_url
from .claims import ShardClaim, claim_shards
from .engine import LocalEngine, ShardEngine, chunk_store, release_store
from .progress import BuildProgress
from .receipt import ShardReceipt
from .stages import BuildStages, load_conditions, load_stages
from .store_claims import StoreShardClaim, claim_store_shards

logger = logging.getLogger(__name__)

# Rounds of checking every shard before finishing gives up. Shards made by other weights than most
# shards are rebuilt in the first; if the rebuilt ones then agree with the few (the weights changed
# since most were built), the rest are rebuilt in the second; failing the third would be a bug.
FINISH_ROUNDS = 3


@dataclass
class BuildReport:
    release_dir: Path | str
    """The release's folder, or its URL for a remote release."""
    plan: Plan
    source: SourceIndex
    built_shards: list[int] = field(default_factory=list)
    receipts: list[ShardReceipt] = field(default_factory=list)
    """What the workers sent back for each shard they wrote in this run."""
    skipped_shards: list[int] = field(default_factory=list)
    missing_shards: list[int] = field(default_factory=list)
    rejected_shards: list[ShardRejection] = field(default_factory=list)
    """Shards that failed their checks, moved aside and rebuilt by this run."""
    other_builds: list[str] = field(default_factory=list)
    """Builds of this release still running when this one found every shard built: the last of them finishes."""
    manifest: Manifest | None = None
    already_complete: bool = False
    seconds: float = 0.0


def _shown_location(recipe: Recipe) -> Path | str:
    return recipe.release_location if is_url(recipe.release_location) else recipe.release_dir


def recipe_text(recipe: Recipe) -> str:
    """The recipe as the user wrote it (or its canonical YAML when it was built in Python)."""
    if recipe.source_file is not None:
        return recipe.source_file.read_text()
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)


def _refuse_foreign_folder(store: Store) -> None:
    """A folder at the release's place that holds anything but posedive's build folder, without a
    manifest or the recipe-hash marker of a build, is not a release: refuse it, touching nothing."""
    release_dir = store.url("")
    foreign = [name for name in store.top_level_names() if name != paths.BUILD_DIR]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ReleaseError(
            f"{release_dir} exists but is not a posedive release or build: it has no {paths.MANIFEST} and no "
            f"{paths.RECIPE_HASH_MARKER}, and holds {shown}",
            hint="posedive builds only into a folder it made: move that folder away, or set output.dir or version "
                 f"in the recipe; to finish parts built elsewhere, copy their whole release folders, "
                 f"{paths.BUILD_DIR}/ included",
        )


def check_release_folder(recipe: Recipe) -> Manifest | None:
    """Refuse to mix recipes in one release folder, and to build in a folder that is not a release;
    return the manifest of a finished release."""
    store = release_store(recipe)
    check_store_access(store)  # a remote location's probes below would read a refused request as "no file"
    release_dir = store.url("")
    if store.is_file(paths.MANIFEST):
        manifest = read_manifest(store.file(paths.MANIFEST))
        if manifest.recipe_hash != recipe.hash:
            raise ReleaseError(
                f"{release_dir} is a finished release of {recipe.name} {recipe.version} built from a different "
                f"recipe (hash {manifest.recipe_hash[:12]}, yours {recipe.hash[:12]}); releases are immutable: "
                f"bump `version` in the recipe"
            )
        return manifest
    if not store.is_file(paths.RECIPE_HASH_MARKER):
        _refuse_foreign_folder(store)
        return None
    marked = store.read_bytes(paths.RECIPE_HASH_MARKER).decode().strip()
    if marked != recipe.hash:
        raise ReleaseError(
            f"{release_dir} holds an unfinished build of a different recipe (hash {marked[:12]}, "
            f"yours {recipe.hash[:12]}); delete that folder or bump `version` in the recipe"
        )
    return None


def _claim(recipe: Recipe, shards: Sequence[int], part: str | None) -> ShardClaim | StoreShardClaim:
    """Claim the shards this build makes: a local release's claims are files held with ``flock``; a
    remote release's are objects in its store, so that builds driven from other machines see them."""
    if is_url(recipe.output.dir):
        return claim_store_shards(release_store(recipe), shards, part=part)
    return claim_shards(recipe.release_dir, shards, part=part)


def _prepare_folder(recipe: Recipe, store: Store, plan: Plan, claim: ShardClaim | StoreShardClaim) -> None:
    store.write_text(paths.RECIPE_HASH_MARKER, recipe.hash + "\n")
    store.write_text(paths.RECIPE, recipe_text(recipe))
    store.write_bytes(paths.PLAN, plan.to_jsonl().encode())
    # Another running build may be writing the release's own files: only a build alone touches theirs.
    owned = [relpath for shard in claim.record.shards for relpath in paths.shard_files(shard)]
    owned += [relpath for shard in claim.record.shards for relpath in _chunk_files(plan, shard)]
    if claim.alone:
        owned += paths.release_level_files()
    if store.local:
        removed = [str(path) for path in remove_temporaries(store.local_path(), owned)]
    else:
        removed = store.remove_temporaries(owned)
    if removed:
        logger.info("removed %d partial file(s) left by an interrupted build", len(removed))


def _chunk_files(plan: Plan, shard: int) -> list[str]:
    """The build-state files of a shard's chunks, when it is built in several."""
    count = len(plan.shard_chunks(shard))
    return [relpath for chunk in range(count) for relpath in paths.chunk_files(shard, chunk)] if count > 1 else []


def existing_shards(store: Store, shards: Sequence[int]) -> list[int]:
    return [shard for shard in shards if store.is_file(paths.shard_name(shard))]


class _Build:
    """One run of ``build_release`` past planning: the shards it checks, rejects, builds and finishes."""

    def __init__(self, recipe: Recipe, plan: Plan, source: SourceIndex, report: BuildReport, *,
                 stages: BuildStages | None, conditions: ConditionRenderer, engine: ShardEngine | None,
                 show_progress: bool) -> None:
        self.recipe, self.plan, self.source, self.report = recipe, plan, source, report
        self.store = release_store(recipe)
        self.checker = ShardChecker(self.store, recipe, plan)
        self.checks: dict[int, ShardCheck] = {}
        self.built_stages: Counter[ShardStages] = Counter()
        self._stages, self._conditions = stages, conditions
        self._engine, self._show_progress = engine, show_progress

    def check(self, shards: Sequence[int]) -> list[ShardRejection]:
        """Check the shards not checked yet in this run; the rejections of those that fail."""
        for shard in shards:
            if shard not in self.checks:
                self.checks[shard] = self.checker.check(shard)
        return [self.checks[shard].rejection for shard in shards if not self.checks[shard].ok]

    def reject(self, rejections: Sequence[ShardRejection]) -> list[int]:
        """Move the rejected shards aside; the shards to build again."""
        for rejection in rejections:
            moved = move_aside(self.store, rejection)
            logger.warning("rejected %s", moved.describe())
            self.report.rejected_shards.append(moved)
            self.checks.pop(rejection.shard, None)
        return sorted(rejection.shard for rejection in rejections)

    def build(self, shards: Sequence[int]) -> None:
        if not shards:
            return
        if self._engine is None:
            stages = self._stages
            self._engine = LocalEngine(stages if stages is not None
                                       else functools.partial(load_stages, self.recipe, self._conditions))
        units_todo = sum(len(self.plan.shard_units(shard)) for shard in shards)
        with BuildProgress(units_todo, enabled=self._show_progress) as progress:
            # The workers write the shards where the release lives; only their receipts come back here.
            for receipt in self._engine.build_shards(self.recipe, self.source, self.plan, shards, progress.record):
                progress.settle(receipt.events)
                self.report.built_shards.append(receipt.shard)
                self.report.receipts.append(receipt)
                if receipt.stats.generator is not None and receipt.stats.estimator is not None:
                    self.built_stages[ShardStages(generator=receipt.stats.generator,
                                                  estimator=receipt.stats.estimator)] += 1

    def finish(self, claim: ShardClaim | StoreShardClaim) -> None:
        """Once every shard exists and no other build runs: check every shard, move aside and rebuild
        those that fail, then write the release."""
        every = range(self.plan.num_shards)
        present = set(existing_shards(self.store, every))
        self.report.missing_shards = [shard for shard in every if shard not in present]
        if self.report.missing_shards:
            return
        others = claim.claim_all(every)
        if others:
            self.report.other_builds = [other.describe() for other in others]
            return
        for round_index in range(FINISH_ROUNDS):
            rejections = self.check(every)
            reference = self.built_stages.most_common(1)[0][0] if self.built_stages else None
            _, disagreeing = agreed_stages(self.checks.values(), reference)
            if not rejections and not disagreeing:
                break
            if round_index == FINISH_ROUNDS - 1:
                failed = "; ".join(rejection.describe() for rejection in [*rejections, *disagreeing])
                raise ReleaseError(f"{self.store.url('')}: shards still fail their checks after being rebuilt: {failed}")
            self.build(self.reject([*rejections, *disagreeing]))
        self.report.manifest = finalize_release(self.recipe, self.plan, self.source, self.checks)


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
    release is finalised by whichever run finds every shard complete while no other build runs.
    ``engine`` builds the shards: by default a ``LocalEngine`` over ``stages``, here;
    ``posedive.builder.ray_engine.RayEngine`` builds them on a Ray cluster with stages it creates in
    its own workers (``stages``, if given, then serve planning only). Whatever the engine, this
    function writes each shard as it arrives and finishes the release from the files alone.
    A build of shards another running build holds raises ``LockError``.
    """
    started = time.perf_counter()
    existing = check_release_folder(recipe)
    source = read_source(recipe.source.model_copy(update={"root": recipe.resolve(recipe.source.root)}))
    conditions = stages.conditions if stages is not None else load_conditions(recipe)
    plan = make_plan(recipe, source, conditions.pose_ids())
    report = BuildReport(release_dir=_shown_location(recipe), plan=plan, source=source)
    if existing is not None:
        report.manifest, report.already_complete = existing, True
        return report
    if dry_run:
        return report

    wanted = part_shards(plan.num_shards, part)
    with _claim(recipe, wanted, part=f"{part[0]}/{part[1]}" if part else None) as claim:
        store = release_store(recipe)
        _prepare_folder(recipe, store, plan, claim)
        run = _Build(recipe, plan, source, report, stages=stages, conditions=conditions, engine=engine,
                     show_progress=show_progress)
        present = existing_shards(store, wanted)
        rebuild = set(run.reject(run.check(present)))
        report.skipped_shards = [shard for shard in present if shard not in rebuild]
        # Chunks a run killed after assembling their shard left behind are no longer needed.
        chunk_store(recipe, plan, store).discard_leftovers(plan, report.skipped_shards)
        skipped = set(report.skipped_shards)
        run.build([shard for shard in wanted if shard not in skipped])
        run.finish(claim)
    report.seconds = time.perf_counter() - started
    return report
