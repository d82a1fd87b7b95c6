"""Building one shard: the work units of the plan that land in it, attempt by attempt.

Round ``k`` takes attempt ``k`` of every unit still without an accepted image and runs it through the
stages in order: reference filter (eq. 10) -> conditions -> target filter (eq. 11) -> generation ->
generated filter (eqs. 12-13). Work is batched across units within a round; a unit's outcome depends
only on its own attempts (per-sample seeds), so a shard's content is the same however the build is
split or resumed. Every rejection is logged with its scores; units that exhaust their attempts are
reported as short.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .. import __version__
from ..filtering.protocol import FilterDecision, generated_decision, reference_decision, target_decision
from ..plan import Attempt, WorkUnit
from ..pose import PoseEstimate
from ..provenance import FilterRecord, SampleProvenance, SourceImage, StageScores
from ..recipe import Recipe
from ..release import RejectedAttempt, ShardStats, StageTotals
from ..schema import ConditionRequest, ConditionSet, GenerationRequest
from ..shards import encode_image
from ..sources import SourceIndex, SourceRecord
from .stages import BuildStages

ProgressCallback = Callable[[str], None]  # called with "accepted", "rejected" or "short"


@dataclass
class ShardResult:
    samples: list[dict]
    rejected: list[RejectedAttempt]
    stats: ShardStats


@dataclass
class _Candidate:
    unit: WorkUnit
    attempt: Attempt
    record: SourceRecord
    reference: Image.Image | None = None
    reference_decision: FilterDecision | None = None
    conditions: ConditionSet | None = None
    target_decision: FilterDecision | None = None


@dataclass
class BuildContext:
    """What every shard of one build shares: recipe, source, stages and per-build caches."""

    recipe: Recipe
    source: SourceIndex
    stages: BuildStages
    plan_hash: str
    reference_cache: dict[str, tuple[Image.Image | None, PoseEstimate | None]] = field(default_factory=dict)
    target_cache: dict[str, PoseEstimate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._records = {record.relpath: record for record in self.source.records}

    def record(self, relpath: str) -> SourceRecord:
        return self._records[relpath]

    def references(self, relpaths: Sequence[str]) -> None:
        """Load and estimate every reference image not seen yet in this build (one batch)."""
        todo = sorted({p for p in relpaths if p not in self.reference_cache})
        images: list[tuple[str, Image.Image]] = []
        for relpath in todo:
            try:
                with Image.open(self.record(relpath).path) as handle:
                    images.append((relpath, handle.convert("RGB")))
            except OSError:
                self.reference_cache[relpath] = (None, None)
        if images:
            estimates = self.stages.estimator.estimate([np.asarray(image) for _, image in images])
            for (relpath, image), estimate in zip(images, estimates):
                self.reference_cache[relpath] = (image, estimate)

    def targets(self, conditions: Sequence[ConditionSet]) -> None:
        """Estimate the pose on each rendered target (its normal map) once per condition."""
        todo = {c.condition_id: c for c in conditions if c.condition_id not in self.target_cache}
        if todo:
            ordered = sorted(todo)
            estimates = self.stages.estimator.estimate([todo[cid].normal for cid in ordered])
            self.target_cache.update(zip(ordered, estimates))


def _stage_scores(decision: FilterDecision, threshold: float) -> StageScores:
    score_name = "min_confidence" if decision.stage == "reference" else "mean_confidence"
    return StageScores(kept=decision.kept, score=decision.scores[score_name], threshold=threshold,
                       difference=decision.scores.get("mean_abs_difference"), reason=decision.reason,
                       confidences=decision.confidences)


def _rejection(candidate: _Candidate, decision: FilterDecision | None, stage: str, reason: str) -> RejectedAttempt:
    attempt = candidate.attempt
    return RejectedAttempt(
        key=candidate.unit.key, pid=candidate.unit.pid, attempt=attempt.index, stage=stage, reason=reason,
        reference=attempt.reference, pose_id=attempt.pose_id, elevation_deg=attempt.elevation_deg,
        azimuth_deg=attempt.azimuth_deg, seed=attempt.seed,
        scores=dict(decision.scores) if decision is not None else {},
    )


def _sample(ctx: BuildContext, candidate: _Candidate, image: Image.Image, generated: FilterDecision) -> dict:
    recipe, record, conditions = ctx.recipe, candidate.record, candidate.conditions
    thresholds = recipe.filter
    provenance = SampleProvenance(
        key=candidate.unit.key,
        source=SourceImage(dataset=ctx.source.dataset, format=ctx.source.format, image=record.relpath,
                           pid=record.pid, camid=record.camid, split=record.split),
        body=conditions.body,
        camera=conditions.camera,
        condition_id=conditions.condition_id,
        seed=candidate.attempt.seed,
        attempt=candidate.attempt.index,
        filter=FilterRecord(
            estimator=ctx.stages.estimator.name,
            reference=_stage_scores(candidate.reference_decision, thresholds.tau_ref),
            target=_stage_scores(candidate.target_decision, thresholds.tau_tar),
            generated=_stage_scores(generated, thresholds.tau_gen),
        ),
        generator=ctx.stages.generator.info,
        recipe_hash=recipe.hash,
        plan_hash=ctx.plan_hash,
        posedive_version=__version__,
    )
    sample: dict = {
        "__key__": candidate.unit.key,
        recipe.output.image_format: encode_image(image, recipe.output.image_format),
        "json": json.dumps(provenance.model_dump(mode="json"), sort_keys=True).encode(),
    }
    for name, array in conditions.maps(recipe.output.condition_maps).items():
        sample[f"{name}.png"] = encode_image(array, "png")
    return sample


def build_shard(ctx: BuildContext, shard: int, units: Sequence[WorkUnit],
                on_result: ProgressCallback | None = None) -> ShardResult:
    recipe, stages, config = ctx.recipe, ctx.stages, ctx.recipe.filter
    notify = on_result or (lambda outcome: None)
    totals = StageTotals(work_units=len(units))
    rejected: list[RejectedAttempt] = []
    accepted: dict[str, dict] = {}
    pending = list(units)

    def reject(candidate: _Candidate, decision: FilterDecision | None, stage: str, reason: str) -> None:
        rejected.append(_rejection(candidate, decision, stage, reason))
        notify("rejected")

    for round_index in range(recipe.max_attempts_per_image):
        candidates = [
            _Candidate(unit=unit, attempt=unit.attempts[round_index], record=ctx.record(unit.attempts[round_index].reference))
            for unit in pending
        ]
        totals.attempts += len(candidates)

        # Eq. 10 on the reference image.
        ctx.references([c.attempt.reference for c in candidates])
        survivors = []
        for candidate in candidates:
            image, estimate = ctx.reference_cache[candidate.attempt.reference]
            if image is None:
                totals.reference_rejected += 1
                reject(candidate, None, "reference", f"unreadable image {candidate.record.path}")
                continue
            decision = reference_decision(estimate.confidences, config)
            candidate.reference, candidate.reference_decision = image, decision
            if not decision.kept:
                totals.reference_rejected += 1
                reject(candidate, decision, "reference", decision.reason)
                continue
            survivors.append(candidate)

        # Render the target conditions, then eq. 11 on the rendered body.
        if survivors:
            requests = [ConditionRequest(c.attempt.pose_id, c.attempt.elevation_deg, c.attempt.azimuth_deg)
                        for c in survivors]
            for candidate, conditions in zip(survivors, stages.conditions.render(requests)):
                candidate.conditions = conditions
            ctx.targets([c.conditions for c in survivors])
        to_generate = []
        for candidate in survivors:
            decision = target_decision(ctx.target_cache[candidate.conditions.condition_id].confidences, config)
            candidate.target_decision = decision
            if not decision.kept:
                totals.target_rejected += 1
                reject(candidate, decision, "target", decision.reason)
                continue
            to_generate.append(candidate)

        # Generate, then eqs. 12-13 against the target's confidences.
        batch_size = recipe.generator.batch_size
        for start in range(0, len(to_generate), batch_size):
            batch = to_generate[start:start + batch_size]
            images = stages.generator.generate(
                [GenerationRequest(reference=c.reference, conditions=c.conditions, seed=c.attempt.seed) for c in batch]
            )
            estimates = stages.estimator.estimate([np.asarray(image.convert("RGB")) for image in images])
            for candidate, image, estimate in zip(batch, images, estimates):
                target_conf = ctx.target_cache[candidate.conditions.condition_id].confidences
                decision = generated_decision(estimate.confidences, target_conf, config)
                if not decision.kept:
                    totals.generated_rejected += 1
                    reject(candidate, decision, "generated", decision.reason)
                    continue
                totals.accepted += 1
                accepted[candidate.unit.key] = _sample(ctx, candidate, image, decision)
                notify("accepted")

        pending = [unit for unit in pending if unit.key not in accepted]
        if not pending:
            break

    totals.short_units = len(pending)
    for _ in pending:
        notify("short")
    stats = ShardStats(shard=shard, totals=totals, short_pids=sorted({unit.pid for unit in pending}))
    samples = [accepted[key] for key in sorted(accepted)]
    return ShardResult(samples=samples, rejected=rejected, stats=stats)


def rejected_jsonl(rejected: Sequence[RejectedAttempt]) -> str:
    ordered = sorted(rejected, key=lambda r: (r.key, r.attempt))
    return "".join(r.model_dump_json() + "\n" for r in ordered)

