"""The provenance record stored as ``json`` beside every generated image.

Every sample carries the same fields with the same types (``datasets`` needs that to build a typed
column), so optional information is ``None`` rather than absent. ``provenance_features()`` declares
the same structure for the dataset card.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .schema import BodyParams, Camera, GeneratorInfo, IdentitySimilarity


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceImage(_Record):
    dataset: str
    format: str
    image: str
    pid: int
    camid: int
    split: str


class StageScores(_Record):
    """One filter stage's decision: ``score`` is the statistic compared with ``threshold``."""

    kept: bool
    score: float
    threshold: float
    difference: float | None = None  # eq. 12, generated stage only
    reason: str | None = None
    confidences: list[float]


class FilterRecord(_Record):
    estimator: str
    reference: StageScores
    target: StageScores
    generated: StageScores


class BodyShapeRecord(_Record):
    """Where the target body's shape came from: the recipe's ``body.shape`` mode, the values used and,
    for a fit, its confidence and whether the identity fell back to a population draw."""

    mode: Literal["fixed", "sampled", "reference"] = Field(description="the recipe's body.shape")
    source: Literal["fixed", "sampled", "reference"] = Field(description="what the values are: the recipe's one "
                                                             "body, a population draw, or the fit to the references")
    labels: list[str] = Field(description="names of the values (anny's phenotypes, SMPL's betas)")
    values: list[float]
    estimated: list[str] = Field(default_factory=list, description="the values fitted to the reference images")
    confidence: float | None = Field(None, description="the fit's confidence, in [0, 1]")
    fell_back: bool = Field(False, description="the fit was not confident enough (or impossible): a draw was used")
    fallback_reason: str | None = None
    images_used: int | None = Field(None, description="reference images the fit used, of images_total")
    images_total: int | None = None


class SampleProvenance(_Record):
    key: str
    source: SourceImage
    body: BodyParams
    camera: Camera
    condition_id: str
    seed: int
    attempt: int
    filter: FilterRecord
    identity: IdentitySimilarity | None = None  # None: the generator measures none (or built before it was recorded)
    # The recipe's quality.reid_encoder's similarity (a Re-ID model's view, whatever the generator); None: not asked for.
    reid_identity: IdentitySimilarity | None = None
    generator: GeneratorInfo
    recipe_hash: str
    plan_hash: str
    posedive_version: str
    # Absent from releases built before bodies took each identity's shape.
    body_shape: BodyShapeRecord | None = None


def provenance_features():
    """The ``datasets`` feature type of ``SampleProvenance`` (the card declares it for the json column)."""
    from datasets import List, Value

    f32, i64, text, flag = Value("float32"), Value("int64"), Value("string"), Value("bool")
    stage = {"kept": flag, "score": f32, "threshold": f32, "difference": f32, "reason": text, "confidences": List(f32)}
    return {
        "key": text,
        "source": {"dataset": text, "format": text, "image": text, "pid": i64, "camid": i64, "split": text},
        "body": {"model": text, "pose_id": text, "pose": List(f32), "shape": List(f32), "pose_tags": List(text)},
        "camera": {"elevation_deg": f32, "azimuth_deg": f32, "distance_m": f32, "fov_deg": f32, "width": i64,
                   "height": i64, "K": List(List(f32)), "R": List(List(f32)), "t": List(f32)},
        "condition_id": text,
        "seed": i64,
        "attempt": i64,
        "filter": {"estimator": text, "reference": stage, "target": stage, "generated": stage},
        "identity": {"encoder": text, "cosine": f32},
        "reid_identity": {"encoder": text, "cosine": f32},
        "generator": {"id": text, "revision": text, "sha256": text, "description": text, "conditions": text,
                      "family": text, "condition_maps": List(text)},
        "recipe_hash": text,
        "plan_hash": text,
        "posedive_version": text,
        "body_shape": {"mode": text, "source": text, "labels": List(text), "values": List(f32),
                       "estimated": List(text), "confidence": f32, "fell_back": flag, "fallback_reason": text,
                       "images_used": i64, "images_total": i64},
    }
