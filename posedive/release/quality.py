"""The quality report of a release: the numbers a user compares generators (and their families) with.

Derived from the release's files alone (each sample's provenance, the rejected logs and the shards'
stats), so it is the same however the build was split, and a release built before identity
similarity was recorded still gets one (its similarity then reads ``None``: not recorded):

* ``stages``: how many attempts reached each filter stage of the paper's supplementary section 5
  (eq. 10 reference, eq. 11 target, eqs. 12-13 generated) and how many passed it;
* ``pose_difference``: eq. 12's ``mean |conf_gen - conf_tar|`` of every generated image, accepted and
  rejected after generation;
* ``identity_similarity``: the cosine of the generator's identity-encoder features of each generated
  image and its reference, accepted and rejected after generation.
* ``reid_similarity``: the same cosine by the Re-ID encoder the recipe names (``quality.reid_encoder``,
  TransReID), independent of the generator: the similarity a Re-ID model sees; ``None`` when the recipe
  names none.

Histograms use fixed bins (``DIFFERENCE_EDGES``, ``COSINE_EDGES``) so releases of different generators
compare bin by bin.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from .. import paths

if TYPE_CHECKING:
    from ..storage import Store

# The manifest holds a ReleaseQuality, so this module names its StageTotals and Release by string only.

QUALITY_VERSION = 1
QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
DIFFERENCE_EDGES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))  # eq. 12 lies in [0, 1]
COSINE_EDGES: tuple[float, ...] = tuple(round(-1 + 0.05 * i, 2) for i in range(41))  # a cosine lies in [-1, 1]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StagePass(_Model):
    reached: int
    passed: int
    rate: float | None  # passed / reached; None when no attempt reached the stage


class Distribution(_Model):
    """Summary of one set of values: count, mean, quantiles (keyed ``"0.05"`` ...) and a fixed-bin histogram."""

    count: int
    mean: float | None
    quantiles: dict[str, float]
    edges: list[float]
    counts: list[int]


class SplitDistribution(_Model):
    accepted: Distribution
    rejected: Distribution  # attempts rejected after generation (eqs. 12-13)


class IdentityQuality(SplitDistribution):
    encoder: str


class ReleaseQuality(_Model):
    version: int = QUALITY_VERSION
    generator: str  # the generator's id
    generator_sha256: str
    stages: dict[str, StagePass]
    pose_difference: SplitDistribution
    identity_similarity: IdentityQuality | None  # None: not recorded (no identity encoder, or an older build)
    reid_similarity: IdentityQuality | None = None  # None: the recipe names no quality.reid_encoder (or an older build)


def distribution(values: Sequence[float], edges: Sequence[float]) -> Distribution:
    array = np.asarray(values, dtype=np.float64)
    counts, _ = np.histogram(np.clip(array, edges[0], edges[-1]), bins=np.asarray(edges))
    if array.size == 0:
        return Distribution(count=0, mean=None, quantiles={}, edges=list(edges), counts=counts.tolist())
    return Distribution(count=int(array.size), mean=round(float(array.mean()), 6),
                        quantiles={f"{q:g}": round(float(np.quantile(array, q)), 6) for q in QUANTILES},
                        edges=list(edges), counts=counts.tolist())


def stage_passes(totals: "StageTotals") -> dict[str, StagePass]:  # noqa: F821
    reached_target = totals.attempts - totals.reference_rejected
    reached_generated = reached_target - totals.target_rejected
    rows = {"reference": (totals.attempts, reached_target), "target": (reached_target, reached_generated),
            "generated": (reached_generated, totals.accepted)}
    return {name: StagePass(reached=reached, passed=passed, rate=round(passed / reached, 6) if reached else None)
            for name, (reached, passed) in rows.items()}


def read_rejected(store: Store, shards: Iterable[int]) -> list[dict]:
    """Every line of the shards' rejected logs in the release location ``store``."""
    entries = []
    for shard in shards:
        text = store.read_bytes(paths.rejected_name(shard)).decode()
        entries += [json.loads(line) for line in text.splitlines() if line.strip()]
    return entries


def release_quality(records: Sequence[dict], rejected: Sequence[dict], totals: "StageTotals",  # noqa: F821
                    generator_id: str, generator_sha256: str) -> ReleaseQuality:
    """The report of a release from its samples' provenance ``records``, its ``rejected`` log lines and totals."""
    after_generation = [entry for entry in rejected if entry["stage"] == "generated"]
    difference = SplitDistribution(
        accepted=distribution([r["filter"]["generated"]["difference"] for r in records], DIFFERENCE_EDGES),
        rejected=distribution([e["scores"]["mean_abs_difference"] for e in after_generation], DIFFERENCE_EDGES),
    )
    return ReleaseQuality(generator=generator_id, generator_sha256=generator_sha256, stages=stage_passes(totals),
                          pose_difference=difference,
                          identity_similarity=_similarity(records, after_generation, "identity", "identity_cosine"),
                          reid_similarity=_similarity(records, after_generation, "reid_identity", "reid_cosine"))


def _similarity(records: Sequence[dict], after_generation: Sequence[dict], field: str, score: str
                ) -> IdentityQuality | None:
    """The distributions of one similarity of the provenance (``field``) and of the rejected log (``score``);
    ``None`` unless every sample records it."""
    similarities = [r.get(field) for r in records]
    if not records or not all(similarities):
        return None
    return IdentityQuality(
        encoder=", ".join(sorted({s["encoder"] for s in similarities})),
        accepted=distribution([s["cosine"] for s in similarities], COSINE_EDGES),
        rejected=distribution([e["scores"][score] for e in after_generation if e["scores"].get(score) is not None],
                              COSINE_EDGES),
    )


def quality_of(release: "Release") -> ReleaseQuality:  # noqa: F821
    """A finished release's report: its manifest's, or for a manifest written before it had one, the
    report computed from the release's files."""
    from ..shards import iter_provenance

    manifest = release.manifest
    if manifest.quality is not None:
        return manifest.quality
    return release_quality(list(iter_provenance(release.shard_paths())),
                           read_rejected(release.store, range(len(manifest.shards))), manifest.totals,
                           manifest.generator.id, manifest.generator.sha256)


def describe(quality: ReleaseQuality) -> list[str]:
    """The report in a few lines of text (``posedive stats`` prints them)."""

    def summary(distribution: Distribution) -> str:
        if not distribution.count:
            return "none"
        q = distribution.quantiles
        return (f"n={distribution.count} mean {distribution.mean:.3f} median {q['0.5']:.3f} "
                f"[p5 {q['0.05']:.3f}, p95 {q['0.95']:.3f}]")

    stages = ", ".join(f"{name} {stage.passed}/{stage.reached}" + ("" if stage.rate is None else f" ({stage.rate:.1%})")
                       for name, stage in quality.stages.items())
    lines = [f"generator {quality.generator} ({quality.generator_sha256[:12]}): pass rates {stages}",
             f"eq. 12 pose difference: accepted {summary(quality.pose_difference.accepted)}; "
             f"rejected {summary(quality.pose_difference.rejected)}"]
    identity = quality.identity_similarity
    lines.append("identity similarity: not recorded" if identity is None else
                 f"identity similarity ({identity.encoder}): accepted {summary(identity.accepted)}; "
                 f"rejected {summary(identity.rejected)}")
    reid = quality.reid_similarity
    if reid is not None:
        lines.append(f"Re-ID similarity ({reid.encoder}): accepted {summary(reid.accepted)}; "
                     f"rejected {summary(reid.rejected)}")
    return lines
