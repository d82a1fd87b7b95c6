"""The filtering protocol of the paper's supplementary section 5, as pure functions (no I/O).

Confidences are a pose estimator's per-keypoint scores in COCO-17 order (``PoseEstimate.confidences``);
the keypoint subset each equation averages or minimises over, and its threshold, come from the
recipe's ``FilterConfig``:

* eq. 10, reference image: kept iff ``min_k conf_ref[k] >= tau_ref`` (a heavily occluded reference
  makes a full-body generation ill-posed);
* eq. 11, target condition (measured on the rendered target body): kept iff
  ``mean_k conf_tar[k] >= tau_tar``;
* eqs. 12-13, generated image: ``O = mean_k |conf_gen[k] - conf_tar[k]|``; kept iff
  ``O <= eps_gen`` and ``mean_k conf_gen[k] >= tau_gen``.

A score exactly at its threshold passes, as the paper's ``>=`` and ``<=`` say. Estimators answer in
float32, where 0.7 is stored as 0.69999999; comparisons therefore allow ``TOLERANCE`` (1e-6, far below
any meaningful confidence difference) so that a score equal to its threshold in float32 still passes.

Every decision carries the compared statistics and all 17 confidences, so a release's provenance can
show why a sample is there and the rejected log why another is not.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..recipe import FilterConfig
from ..schema import COCO17_KEYPOINTS

Stage = Literal["reference", "target", "generated"]
TOLERANCE = 1e-6


def _at_least(value: float, threshold: float) -> bool:
    return value >= threshold - TOLERANCE


def _at_most(value: float, threshold: float) -> bool:
    return value <= threshold + TOLERANCE


class FilterDecision(BaseModel):
    """One filter stage's verdict on one image, with the numbers it was based on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Stage
    kept: bool
    reason: str | None = None  # why it was rejected; None when kept
    scores: dict[str, float]  # the statistic(s) compared with the thresholds
    confidences: list[float]  # all 17 COCO-17 confidences of the judged image


def _confidences(conf: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(conf, dtype=np.float64)
    if values.shape != (len(COCO17_KEYPOINTS),):
        raise ValueError(f"{what}: expected {len(COCO17_KEYPOINTS)} COCO-17 confidences, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
        raise ValueError(f"{what}: confidences must be finite and in [0, 1], got {values.tolist()}")
    return values


def reference_decision(conf: np.ndarray, config: FilterConfig) -> FilterDecision:
    """Eq. 10: keep the reference iff its least confident keypoint of the subset reaches tau_ref."""
    values = _confidences(conf, "reference confidences")
    subset = config.indices("reference")
    worst = subset[int(np.argmin(values[subset]))]
    minimum = float(values[worst])
    kept = _at_least(minimum, config.tau_ref)
    reason = None if kept else (
        f"min confidence {minimum:.3f} < tau_ref {config.tau_ref} at {COCO17_KEYPOINTS[worst]}"
    )
    return FilterDecision(stage="reference", kept=kept, reason=reason,
                          scores={"min_confidence": minimum}, confidences=values.tolist())


def target_decision(conf: np.ndarray, config: FilterConfig) -> FilterDecision:
    """Eq. 11: keep the target condition iff its mean confidence over the subset reaches tau_tar."""
    values = _confidences(conf, "target confidences")
    subset = config.indices("target")
    mean = float(values[subset].mean())
    kept = _at_least(mean, config.tau_tar)
    reason = None if kept else f"mean confidence {mean:.3f} < tau_tar {config.tau_tar}"
    return FilterDecision(stage="target", kept=kept, reason=reason,
                          scores={"mean_confidence": mean}, confidences=values.tolist())


def generated_decision(conf_gen: np.ndarray, conf_tar: np.ndarray, config: FilterConfig) -> FilterDecision:
    """Eqs. 12-13: keep a generated image iff its confidences follow the target's (mean absolute
    difference <= eps_gen) and are high overall (mean >= tau_gen)."""
    generated = _confidences(conf_gen, "generated confidences")
    target = _confidences(conf_tar, "target confidences")
    subset = config.indices("generated")
    difference = float(np.abs(generated[subset] - target[subset]).mean())
    mean = float(generated[subset].mean())
    problems = []
    if not _at_most(difference, config.eps_gen):
        problems.append(f"mean |conf_gen - conf_tar| {difference:.3f} > eps_gen {config.eps_gen}")
    if not _at_least(mean, config.tau_gen):
        problems.append(f"mean confidence {mean:.3f} < tau_gen {config.tau_gen}")
    return FilterDecision(stage="generated", kept=not problems, reason="; ".join(problems) or None,
                          scores={"mean_abs_difference": difference, "mean_confidence": mean},
                          confidences=generated.tolist())
