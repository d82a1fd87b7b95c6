"""Building one shard: the work units of the plan that land in it, attempt by attempt.

``ShardBuilder.build`` runs rounds: round ``k`` takes attempt ``k`` of every unit still without an
accepted image through the paper's filtering protocol in order (supplementary section 5):

1. ``reference_filter``: eq. 10 on the reference image;
2. ``render_targets``: the target body's depth, normal and skeleton maps;
3. ``target_filter``: eq. 11 on the rendered target;
4. ``generate_and_filter``: the generator, then eqs. 12-13 on the generated image against the target.

Work is batched across units within a round; a unit's outcome depends only on its own attempts
(per-sample seeds), so a shard's content is the same however the build is split or resumed. Every
rejection is logged with its scores; units that exhaust their attempts are reported as short. Each
outcome is emitted as a ``UnitEvent`` as it happens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Callable, Literal, Sequence, TypeVar

import numpy as np
from PIL import Image

from .. import __version__, paths
from ..body.shape import shape_labels
from ..filtering.protocol import FilterDecision, generated_decision, reference_decision, target_decision
from ..plan import Attempt, WorkUnit
from ..pose import PoseEstimate
from ..provenance import BodyShapeRecord, FilterRecord, SampleProvenance, SourceImage, StageScores
from ..recipe import Recipe
from ..release import RejectedAttempt, ShardStats, StageTotals, UnreadableImage
from ..schema import (
    BodyParams,
    ConditionRequest,
    ConditionSet,
    GenerationRequest,
    GeneratorInfo,
    IdentityFeatures,
    IdentitySimilarity,
)
from ..shards import encode_image
from ..sources import SourceIndex, SourceRecord
from .progress import EventHandler, Outcome, UnitEvent
from .stages import BuildStages

_TryT = TypeVar("_TryT", bound="_Try")
FilterStage = Literal["reference", "target", "generated"]


@dataclass
class ShardResult:
    """One built shard (or one chunk of it): its samples (sorted by key), rejected attempts, stats and
    every event it emitted."""

    samples: list[dict]
    rejected: list[RejectedAttempt]
    stats: ShardStats
    events: list[UnitEvent] = field(default_factory=list)

    @property
    def shard(self) -> int:
        return self.stats.shard


@dataclass
class ShardWork:
    """One work item of an engine: chunk ``chunk`` of ``chunks`` of a shard and the plan's work units
    in it (all of the shard's units when the shard is one chunk)."""

    shard: int
    units: list[WorkUnit]
    chunk: int = 0
    chunks: int = 1


@dataclass(frozen=True)
class _Try:
    """One attempt of one unit; each stage it passes returns it with that stage's result added."""

    unit: WorkUnit
    attempt: Attempt
    record: SourceRecord


@dataclass(frozen=True)
class _Referenced(_Try):
    reference: Image.Image
    reference_decision: FilterDecision


@dataclass(frozen=True)
class _Rendered(_Referenced):
    conditions: ConditionSet


@dataclass(frozen=True)
class _Targeted(_Rendered):
    target_decision: FilterDecision


def _passed(stage: type[_TryT], earlier: _Try, **added: object) -> _TryT:
    return stage(**{item.name: getattr(earlier, item.name) for item in fields(earlier)}, **added)


@dataclass
class BuildContext:
    """What every shard of one build shares: recipe, source, stages and per-build caches."""

    recipe: Recipe
    source: SourceIndex
    stages: BuildStages
    plan_hash: str
    reference_cache: dict[str, tuple[Image.Image | None, PoseEstimate | None]] = field(default_factory=dict)
    # Why each source image that could not be decoded failed: images are checked here, lazily, as a
    # shard first needs them (reading a source lists names only).
    unreadable: dict[str, str] = field(default_factory=dict)
    target_cache: dict[str, PoseEstimate] = field(default_factory=dict)
    identity_cache: dict[str, np.ndarray] = field(default_factory=dict)
    reid_cache: dict[str, np.ndarray] = field(default_factory=dict)

    body_shapes: dict[int, BodyShapeRecord | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._records = {record.relpath: record for record in self.source.records}
        self._train_by_pid: dict[int, list[SourceRecord]] | None = None

    def body_shape(self, pid: int) -> BodyShapeRecord | None:
        """The identity's body shape from its training images (None: the renderer's own body)."""
        if pid not in self.body_shapes:
            shapes = self.stages.shapes
            if shapes is None:
                self.body_shapes[pid] = None
            else:
                if self._train_by_pid is None:
                    self._train_by_pid = self.source.train_by_pid()
                images = [record.path for record in self._train_by_pid.get(pid, [])]
                self.body_shapes[pid] = shapes.shape(pid, images)
        return self.body_shapes[pid]

    def record(self, relpath: str) -> SourceRecord:
        return self._records[relpath]

    def references(self, relpaths: Sequence[str]) -> None:
        """Load and estimate every reference image not seen yet in this build (one batch)."""
        todo = sorted({p for p in relpaths if p not in self.reference_cache})
        images: list[tuple[str, Image.Image]] = []
        for relpath in todo:
            path = self.record(relpath).path
            try:
                with Image.open(path) as handle:
                    images.append((relpath, handle.convert("RGB")))
            except (OSError, SyntaxError, ValueError) as error:
                self.reference_cache[relpath] = (None, None)
                # The path relative to the source root, so the reason reads the same on every machine.
                self.unreadable[relpath] = f"{type(error).__name__}: {str(error).replace(str(path), relpath)}"
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

    def identity_similarities(self, batch: Sequence[_Targeted], images: Sequence[Image.Image]
                              ) -> list[IdentitySimilarity | None]:
        """Cosine of the generator's identity features of each generated image and of its reference
        (each reference encoded once per build); ``None`` for a generator without identity features."""
        generator = self.stages.generator
        if not isinstance(generator, IdentityFeatures):
            return [None] * len(batch)
        return _similarities(batch, images, generator.identity_features, generator.identity_encoder,
                             self.identity_cache)

    def reid_similarities(self, batch: Sequence[_Targeted], images: Sequence[Image.Image]
                          ) -> list[IdentitySimilarity | None]:
        """Cosine of the recipe's Re-ID encoder's features of each generated image and of its reference
        (each reference encoded once per build); ``None`` when the recipe names no Re-ID encoder."""
        reid = self.stages.reid
        if reid is None:
            return [None] * len(batch)
        return _similarities(batch, images, reid.features, reid.name, self.reid_cache)

    def target_confidences(self, candidate: _Rendered) -> np.ndarray:
        return self.target_cache[candidate.conditions.condition_id].confidences


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity in float64, rounded to 6 decimals so float noise of batched encoders stays out of shards."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return round(float(a @ b / norms), 6) if norms > 0 else 0.0


def _stage_scores(decision: FilterDecision, threshold: float) -> StageScores:
    score_name = "min_confidence" if decision.stage == "reference" else "mean_confidence"
    return StageScores(kept=decision.kept, score=decision.scores[score_name], threshold=threshold,
                       difference=decision.scores.get("mean_abs_difference"), reason=decision.reason,
                       confidences=decision.confidences)


def _rejection(candidate: _Try, decision: FilterDecision | None, stage: FilterStage, reason: str,
               identity: IdentitySimilarity | None = None, reid: IdentitySimilarity | None = None) -> RejectedAttempt:
    attempt = candidate.attempt
    scores: dict[str, float | None] = dict(decision.scores) if decision is not None else {}
    if identity is not None:
        scores["identity_cosine"] = identity.cosine
    if reid is not None:
        scores["reid_cosine"] = reid.cosine
    return RejectedAttempt(
        key=candidate.unit.key, pid=candidate.unit.pid, attempt=attempt.index, stage=stage, reason=reason,
        reference=attempt.reference, pose_id=attempt.pose_id, elevation_deg=attempt.elevation_deg,
        azimuth_deg=attempt.azimuth_deg, seed=attempt.seed,
        scores=scores,
    )


def _request_shape(record: BodyShapeRecord | None) -> tuple[float, ...] | None:
    return None if record is None else tuple(record.values)


def _fixed_shape(body: BodyParams) -> BodyShapeRecord:
    """The record of the renderer's own body (``body.shape: fixed``)."""
    return BodyShapeRecord(mode="fixed", source="fixed", labels=list(shape_labels(body.model, len(body.shape))),
                           values=list(body.shape))


def _sample(ctx: BuildContext, candidate: _Targeted, image: Image.Image, generated: FilterDecision,
            identity: IdentitySimilarity | None, reid: IdentitySimilarity | None = None) -> dict:
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
        identity=identity,
        reid_identity=reid,
        generator=ctx.stages.generator.info,
        recipe_hash=recipe.hash,
        plan_hash=ctx.plan_hash,
        posedive_version=__version__,
        body_shape=ctx.body_shape(candidate.unit.pid) or _fixed_shape(conditions.body),
    )
    sample: dict = {
        "__key__": candidate.unit.key,
        recipe.output.image_format: encode_image(image, recipe.output.image_format),
        "json": json.dumps(provenance.model_dump(mode="json"), sort_keys=True).encode(),
    }
    for name, array in conditions.maps(recipe.output.condition_maps).items():
        sample[paths.condition_member(name)] = encode_image(array, "png")
    return sample


class _ShardTally:
    """What one shard's build has produced so far: totals, rejections, accepted samples and events."""

    def __init__(self, shard: int, units: Sequence[WorkUnit], on_event: EventHandler | None) -> None:
        self.shard = shard
        self.totals = StageTotals(work_units=len(units))
        self.rejected: list[RejectedAttempt] = []
        self.unreadable: dict[str, str] = {}
        self.accepted: dict[str, dict] = {}
        self.events: list[UnitEvent] = []
        self._on_event = on_event

    def _emit(self, key: str, outcome: Outcome, attempt: int | None) -> None:
        event = UnitEvent(shard=self.shard, key=key, outcome=outcome, attempt=attempt)
        self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def reject(self, candidate: _Try, decision: FilterDecision | None, stage: FilterStage, reason: str,
               identity: IdentitySimilarity | None = None, reid: IdentitySimilarity | None = None) -> None:
        setattr(self.totals, f"{stage}_rejected", getattr(self.totals, f"{stage}_rejected") + 1)
        self.rejected.append(_rejection(candidate, decision, stage, reason, identity, reid))
        self._emit(candidate.unit.key, "rejected", candidate.attempt.index)

    def unreadable_image(self, relpath: str, reason: str) -> None:
        self.unreadable.setdefault(relpath, reason)

    def accept(self, candidate: _Targeted, sample: dict) -> None:
        self.totals.accepted += 1
        self.accepted[candidate.unit.key] = sample
        self._emit(candidate.unit.key, "accepted", candidate.attempt.index)

    def result(self, short: Sequence[WorkUnit], generator: GeneratorInfo, estimator: str) -> ShardResult:
        self.totals.short_units = len(short)
        for unit in short:
            self._emit(unit.key, "short", None)
        stats = ShardStats(shard=self.shard, totals=self.totals, short_pids=sorted({unit.pid for unit in short}),
                           generator=generator, estimator=estimator,
                           unreadable=[UnreadableImage(image=relpath, reason=reason)
                                       for relpath, reason in sorted(self.unreadable.items())])
        samples = [self.accepted[key] for key in sorted(self.accepted)]
        return ShardResult(samples=samples, rejected=self.rejected, stats=stats, events=self.events)


class ShardBuilder:
    """Builds shards with one set of stages, one method per stage of the paper's filter, in its order."""

    def __init__(self, ctx: BuildContext) -> None:
        self.ctx = ctx

    def build(self, shard: int, units: Sequence[WorkUnit], on_event: EventHandler | None = None) -> ShardResult:
        tally = _ShardTally(shard, units, on_event)
        pending = list(units)
        for round_index in range(self.ctx.recipe.max_attempts_per_image):
            candidates = self.attempts(pending, round_index)
            tally.totals.attempts += len(candidates)
            referenced = self.reference_filter(candidates, tally)
            rendered = self.render_targets(referenced)
            targeted = self.target_filter(rendered, tally)
            self.generate_and_filter(targeted, tally)
            pending = [unit for unit in pending if unit.key not in tally.accepted]
            if not pending:
                break
        return tally.result(pending, self.ctx.stages.generator.info, self.ctx.stages.estimator.name)

    def attempts(self, units: Sequence[WorkUnit], round_index: int) -> list[_Try]:
        """Attempt ``round_index`` of each unit."""
        return [_Try(unit=unit, attempt=unit.attempts[round_index],
                     record=self.ctx.record(unit.attempts[round_index].reference)) for unit in units]

    def reference_filter(self, tries: Sequence[_Try], tally: _ShardTally) -> list[_Referenced]:
        """Eq. 10: the reference image must show the reference keypoints confidently."""
        ctx = self.ctx
        ctx.references([t.attempt.reference for t in tries])
        kept = []
        for candidate in tries:
            image, estimate = ctx.reference_cache[candidate.attempt.reference]
            if image is None or estimate is None:
                if candidate.attempt.reference in ctx.unreadable:
                    tally.unreadable_image(candidate.attempt.reference, ctx.unreadable[candidate.attempt.reference])
                tally.reject(candidate, None, "reference", f"unreadable image {candidate.attempt.reference}")
                continue
            decision = reference_decision(estimate.confidences, ctx.recipe.filter)
            if not decision.kept:
                tally.reject(candidate, decision, "reference", decision.reason)
                continue
            kept.append(_passed(_Referenced, candidate, reference=image, reference_decision=decision))
        return kept

    def render_targets(self, referenced: Sequence[_Referenced]) -> list[_Rendered]:
        """The target body's condition maps for each attempt's pose and camera, and their pose estimates."""
        if not referenced:
            return []
        requests = [ConditionRequest(c.attempt.pose_id, c.attempt.elevation_deg, c.attempt.azimuth_deg,
                                     shape=_request_shape(self.ctx.body_shape(c.unit.pid))) for c in referenced]
        rendered = [_passed(_Rendered, candidate, conditions=conditions)
                    for candidate, conditions in zip(referenced, self.ctx.stages.conditions.render(requests))]
        self.ctx.targets([c.conditions for c in rendered])
        return rendered

    def target_filter(self, rendered: Sequence[_Rendered], tally: _ShardTally) -> list[_Targeted]:
        """Eq. 11: the rendered target must be a body the estimator reads confidently."""
        kept = []
        for candidate in rendered:
            decision = target_decision(self.ctx.target_confidences(candidate), self.ctx.recipe.filter)
            if not decision.kept:
                tally.reject(candidate, decision, "target", decision.reason)
                continue
            kept.append(_passed(_Targeted, candidate, target_decision=decision))
        return kept

    def generate_and_filter(self, targeted: Sequence[_Targeted], tally: _ShardTally) -> None:
        """Generate ``generator.batch_size`` images at a time, then eqs. 12-13: the generated pose must
        agree with the target's (mean confidence difference) and be confident itself."""
        ctx = self.ctx
        batch_size = ctx.recipe.generator.batch_size
        for start in range(0, len(targeted), batch_size):
            batch = targeted[start:start + batch_size]
            images = ctx.stages.generator.generate(
                [GenerationRequest(reference=c.reference, conditions=c.conditions, seed=c.attempt.seed) for c in batch]
            )
            estimates = ctx.stages.estimator.estimate([np.asarray(image.convert("RGB")) for image in images])
            identities = ctx.identity_similarities(batch, images)
            reids = ctx.reid_similarities(batch, images)
            for candidate, image, estimate, identity, reid in zip(batch, images, estimates, identities, reids):
                decision = generated_decision(estimate.confidences, ctx.target_confidences(candidate), ctx.recipe.filter)
                if not decision.kept:
                    tally.reject(candidate, decision, "generated", decision.reason, identity, reid)
                    continue
                tally.accept(candidate, _sample(ctx, candidate, image, decision, identity, reid))


def _similarities(batch: Sequence[_Targeted], images: Sequence[Image.Image],
                  features: Callable[[Sequence[Image.Image]], Sequence], encoder: str,
                  cache: dict) -> list[IdentitySimilarity]:
    """Cosine of ``features`` of each generated image and of its reference; ``cache`` keeps each
    reference's features for the build, so a reference is encoded once."""
    todo = sorted({c.attempt.reference for c in batch if c.attempt.reference not in cache})
    if todo:
        references = {c.attempt.reference: c.reference for c in batch}
        cache.update(zip(todo, features([references[r] for r in todo])))
    return [IdentitySimilarity(encoder=encoder, cosine=cosine(cache[c.attempt.reference], generated))
            for c, generated in zip(batch, features(images))]
