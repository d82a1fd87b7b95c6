"""Checking each shard against the plan before it joins a release, and moving aside those that fail.

A file at ``data/train-00001.tar`` is not necessarily the shard the plan asks for: it may come from a
build of another recipe or of the same recipe with another seed (parts copied together), be cut short
(a full disk, an interrupted copy), hold samples of another shard, or have been made by other weights
under the same recipe (a Hub revision that moved). ``ShardChecker.check`` reads a shard once and
compares it with the plan and its sidecars:

* it is a complete tar archive (``posedive.shards.inspect_shard``);
* every sample's provenance names this release's recipe hash and plan hash;
* its keys are keys the plan assigns to that shard, each with exactly the release's fields;
* its stats (``rejected/<shard>.stats.json``) and rejected log agree with it and with the plan;
* its samples were made by the generator and estimator its stats name.

``agreed_stages`` then checks that every shard names the same generator and estimator. A shard that
fails is moved, with its stats and rejected log, into ``.build/rejected-shards/`` (``move_aside``):
nothing is deleted, and the build rebuilds it. The checks read through a binary stream and compare
names, so they hold for a release on remote storage as they do for a local folder.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .. import paths
from ..errors import FormatError, ReleaseError
from ..plan import Plan
from ..recipe import Recipe
from ..schema import GeneratorInfo
from ..shards import ShardContents, ShardScan, inspect_shard
from ..storage import Store, open_store
from .manifest import ShardStats

RejectionReason = Literal[
    "missing-stats",  # no rejected/<shard>.stats.json beside the shard
    "bad-stats",  # stats that cannot be read, or that disagree with the shard or the plan
    "missing-rejected-log",  # no rejected/<shard>.jsonl beside the shard
    "unreadable",  # not a complete tar archive
    "other-recipe",  # samples built from another recipe
    "other-plan",  # samples built from another plan of this recipe
    "unplanned-keys",  # samples the plan does not assign to this shard
    "bad-members",  # samples whose fields are not the release's
    "other-stages",  # made by another generator or estimator than the rest of the release
]


class ShardStages(BaseModel):
    """The generator and the pose estimator that made a shard."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generator: GeneratorInfo
    estimator: str

    def describe(self) -> str:
        revision = f"@{self.generator.revision}" if self.generator.revision else ""
        return f"generator {self.generator.id}{revision} (weights sha256 {self.generator.sha256[:12]}), " \
               f"estimator {self.estimator}"


class ShardRejection(BaseModel):
    """A shard that failed its checks: why, in words that name the file, field or sample, and where
    its files were moved."""

    model_config = ConfigDict(extra="forbid")

    shard: int
    reason: RejectionReason
    detail: str
    moved_to: list[str] = []

    def describe(self) -> str:
        moved = f"; moved to {', '.join(self.moved_to)}" if self.moved_to else ""
        return f"{paths.shard_name(self.shard)} ({self.reason}): {self.detail}{moved}"


@dataclass
class ShardCheck:
    """The outcome of checking one shard: its scan (hash, size, samples) when it is readable, its stats,
    the stages that made it (``None`` when nothing names them: no samples and stats without them), and
    the rejection when it failed."""

    shard: int
    scan: ShardScan | None = None
    stats: ShardStats | None = None
    stages: ShardStages | None = None
    rejection: ShardRejection | None = None

    @property
    def ok(self) -> bool:
        return self.rejection is None


class _Rejected(Exception):
    def __init__(self, reason: RejectionReason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _sample_stages(provenance: dict) -> ShardStages:
    return ShardStages(generator=GeneratorInfo(**provenance["generator"]), estimator=provenance["filter"]["estimator"])


class ShardChecker:
    """Checks the shards of one release folder against its recipe and plan."""

    def __init__(self, root: Path | Store, recipe: Recipe, plan: Plan) -> None:
        self.store = root if isinstance(root, Store) else open_store(root)
        self.recipe, self.plan = recipe, plan
        self._planned: dict[int, set[str]] = {shard: set() for shard in range(plan.num_shards)}
        for unit in plan.units:
            self._planned[unit.shard].add(unit.key)
        maps = [paths.condition_member(name) for name in recipe.output.condition_maps]
        self.fields = sorted([recipe.output.image_format, "json", *maps])

    def check(self, shard: int) -> ShardCheck:
        """Check one shard that exists on disk."""
        result = ShardCheck(shard=shard)
        try:
            self._check(shard, result)
        except _Rejected as rejected:
            result.rejection = ShardRejection(shard=shard, reason=rejected.reason, detail=rejected.detail)
        return result

    def _check(self, shard: int, result: ShardCheck) -> None:
        stats_name = paths.shard_stats_name(shard)
        stats_file = self.store.file(stats_name)
        if not stats_file.is_file():
            raise _Rejected("missing-stats", f"{stats_file} does not exist")
        try:
            result.stats = ShardStats.model_validate_json(stats_file.read_bytes())
        except ValidationError as error:
            raise _Rejected("bad-stats", f"{stats_file} is not a posedive shard's stats "
                                         f"({error.error_count()} problem(s), first: {error.errors()[0]['msg']})")
        rejected_log = self.store.file(paths.rejected_name(shard))
        if not rejected_log.is_file():
            raise _Rejected("missing-rejected-log", f"{rejected_log} does not exist")
        shard_file = self.store.file(paths.shard_name(shard))
        try:
            contents = inspect_shard(shard_file)
        except FormatError as error:
            raise _Rejected("unreadable", str(error))
        result.scan = contents.scan
        provenance = self._provenance(shard_file, contents)
        self._check_origin(shard_file, provenance)
        self._check_samples(shard, shard_file, contents)
        self._check_stats(shard, shard_file, result.stats, contents.scan.samples, rejected_log)
        result.stages = self._check_stages(shard_file, result.stats, provenance)

    def _provenance(self, shard_file: Path, contents: ShardContents) -> dict[str, dict]:
        if contents.layout_problems:
            raise _Rejected("bad-members", f"{shard_file}: {contents.layout_problems[0]}")
        records = {}
        for key, data in contents.provenance.items():
            try:
                record = json.loads(data)
            except (UnicodeDecodeError, ValueError) as error:
                raise _Rejected("bad-members", f"{shard_file}: {key}.json is not JSON ({error})")
            if not isinstance(record, dict):
                raise _Rejected("bad-members", f"{shard_file}: {key}.json is not a provenance record")
            records[key] = record
        return records

    def _check_origin(self, shard_file: Path, provenance: dict[str, dict]) -> None:
        for key, record in provenance.items():
            recipe_hash = record.get("recipe_hash")
            if recipe_hash != self.recipe.hash:
                raise _Rejected("other-recipe", f"{shard_file}: sample {key} was built from recipe "
                                                f"{str(recipe_hash)[:12]}, this release's recipe is {self.recipe.hash[:12]}")
            plan_hash = record.get("plan_hash")
            if plan_hash != self.plan.hash:
                raise _Rejected("other-plan", f"{shard_file}: sample {key} was built from plan {str(plan_hash)[:12]}, "
                                              f"this release's plan is {self.plan.hash[:12]}")
            if record.get("key") != key:
                raise _Rejected("bad-members", f"{shard_file}: sample {key}'s provenance names key {record.get('key')!r}")

    def _check_samples(self, shard: int, shard_file: Path, contents: ShardContents) -> None:
        unplanned = sorted(set(contents.fields) - self._planned[shard])
        if unplanned:
            raise _Rejected("unplanned-keys", f"{shard_file}: {len(unplanned)} sample(s) the plan does not assign to "
                                              f"shard {shard} (first: {unplanned[0]!r})")
        for key, fields in contents.fields.items():
            if sorted(fields) != self.fields:
                raise _Rejected("bad-members", f"{shard_file}: sample {key} has members {sorted(fields)}, "
                                               f"every sample of this release has {self.fields}")

    def _check_stats(self, shard: int, shard_file: Path, stats: ShardStats, samples: int, rejected_log: Path) -> None:
        stats_file = self.store.file(paths.shard_stats_name(shard))
        totals, planned = stats.totals, len(self._planned[shard])
        if stats.shard != shard:
            raise _Rejected("bad-stats", f"{stats_file}: field shard is {stats.shard}, expected {shard}")
        if totals.work_units != planned:
            raise _Rejected("bad-stats", f"{stats_file}: field totals.work_units is {totals.work_units}, but the plan "
                                         f"assigns {planned} work units to shard {shard}")
        if totals.accepted != samples:
            raise _Rejected("bad-stats", f"{shard_file}: holds {samples} samples but its stats ({stats_file}) say "
                                         f"{totals.accepted}")
        if totals.accepted + totals.short_units != totals.work_units:
            raise _Rejected("bad-stats", f"{stats_file}: {totals.accepted} accepted and {totals.short_units} short "
                                         f"units do not add up to {totals.work_units} work units")
        rejections = totals.reference_rejected + totals.target_rejected + totals.generated_rejected
        with rejected_log.open("rb") as handle:
            lines = sum(1 for line in handle if line.strip())
        if lines != rejections:
            raise _Rejected("bad-stats", f"{rejected_log}: lists {lines} rejected attempts but {stats_file} counts "
                                         f"{rejections}")

    def _check_stages(self, shard_file: Path, stats: ShardStats, provenance: dict[str, dict]) -> ShardStages | None:
        named = None
        if stats.generator is not None and stats.estimator is not None:
            named = ShardStages(generator=stats.generator, estimator=stats.estimator)
        for key, record in provenance.items():
            try:
                made_by = _sample_stages(record)
            except (KeyError, TypeError, ValidationError):
                raise _Rejected("bad-members", f"{shard_file}: sample {key}'s provenance does not name its generator "
                                               f"and estimator")
            if named is None:
                named = made_by
            elif made_by != named:
                raise _Rejected("other-stages", f"{shard_file}: sample {key} was made by {made_by.describe()}, but "
                                                f"the shard's stats name {named.describe()}")
        return named


def agreed_stages(checks: Iterable[ShardCheck], reference: ShardStages | None = None
                  ) -> tuple[ShardStages | None, list[ShardRejection]]:
    """The stages that made the release, and a rejection for each shard made by others.

    ``reference`` (the stages of the shards this run built) decides; without it the stages most
    shards name do. Shards split evenly between stages, with nothing to decide between them, are an
    error naming each group."""
    named = [check for check in checks if check.ok and check.stages is not None]
    if reference is None:
        counts = Counter(check.stages for check in named)
        ranked = counts.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            groups = "; ".join(
                f"{stages.describe()}: {', '.join(paths.shard_name(c.shard) for c in named if c.stages == stages)}"
                for stages, _ in ranked)
            raise ReleaseError(
                f"the shards were made by different generators or estimators, as many by each: {groups}",
                hint=f"move the shards made with the weights you do not want (with their {paths.REJECTED_DIR}/ files) "
                     f"into {paths.REJECTED_SHARDS_DIR}/ and run `posedive build RECIPE` again to rebuild them",
            )
        reference = ranked[0][0] if ranked else None
    rejections = [
        ShardRejection(shard=check.shard, reason="other-stages",
                       detail=f"made by {check.stages.describe()}, the release by {reference.describe()}")
        for check in named if check.stages != reference
    ]
    return reference, rejections


def move_aside(root: Path | Store, rejection: ShardRejection) -> ShardRejection:
    """Move a rejected shard's files (shard, stats, rejected log: whichever exist) into
    ``.build/rejected-shards/``, each as ``<name>.<reason>``, never over an earlier one."""
    store = root if isinstance(root, Store) else open_store(root)
    present = [relpath for relpath in paths.shard_files(rejection.shard) if store.is_file(relpath)]
    copy = 1
    while any(store.exists(paths.rejected_shard_name(relpath, rejection.reason, copy)) for relpath in present):
        copy += 1
    moved = []
    for relpath in reversed(present):  # the shard first: without it, the build sees the shard as not built
        target = paths.rejected_shard_name(relpath, rejection.reason, copy)
        store.move(relpath, target)
        moved.append(target)
    return rejection.model_copy(update={"moved_to": moved})
