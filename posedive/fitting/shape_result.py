"""What body-shape estimation answers (per image, per identity) and how it is configured.

``ShapeEstimate`` is what a sample's provenance records about its body's shape: the values, which
of them were fitted, their uncertainty and spread over the reference images, the confidence, and
whether the identity fell back to a population draw.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..body.population import PopulationSpec
from .clothing import ClothingCalibration


class ShapeFitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bins: int = Field(20, ge=4, le=100, description="slices of the width profile, feet to head")
    iterations: int = Field(3, ge=1, le=20, description="Gauss-Newton steps over all of an identity's images")
    step: float = Field(0.08, gt=0, lt=0.5, description="finite-difference step, in shape-parameter units")
    noise: float = Field(
        0.02,
        gt=0,
        description="standard deviation of a profile value between a render and its BlazePose mask, in statures "
        "(0.005-0.03 per slice on 64x128 renders of known bodies with the fitted pose)",
    )
    prior_scale: float = Field(1.0, gt=0, description="scale of the population's standard deviations in the prior")
    max_residual: float = Field(3.0, gt=0, description="largest accepted rms profile residual, in units of noise")
    min_torso_confidence: float = Field(0.5, ge=0, le=1, description="lowest keypoint confidence of the torso")
    min_confidence: float = Field(0.2, ge=0, le=1, description="below this an identity falls back to a sampled shape")
    outlier_scale: float = Field(
        0.3, gt=0, description="Cauchy scale of an image's distance from the fused shape, in population sds"
    )
    parameters: list[str] | None = Field(
        None,
        description="shape values to estimate, the rest staying at the population mean; None: the body model's "
        "default (anny: gender, weight, height; SMPL: every beta)",
    )
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    clothing: ClothingCalibration = Field(
        "street",
        description="what the masks are of: dressed people in street photographs (their mask is wider than the "
        "bare body by the calibrated widths of posedive.fitting.clothing, taken off before fitting) or bare "
        "bodies (none: renders of the body model)",
    )
    uncalibrated: list[str] = Field(
        ["gender"],
        description="estimated values fitted to the masks as they are, before the clothing calibration is taken "
        "off, then held while the others are fitted to the calibrated masks (ignored with clothing none). The "
        "calibration's excess is largest at the waist and calves; subtracted, it leaves an hourglass that the fit "
        "reads as a woman's build (benchmarks/clothing_calibration.py)",
    )
    threads: int | None = Field(1, ge=1, description="torch threads while estimating (None keeps torch's setting)")


class ImageShape(BaseModel):
    """One image's answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    used: bool
    reason: str | None = Field(None, description="why the image was left out")
    values: list[float] | None = Field(None, description="the image's shape estimate")
    sd: list[float] | None = Field(None, description="its posterior standard deviations (the prior included)")
    residual: float | None = Field(None, description="rms profile residual at the estimate, in units of noise")


class ShapeEstimate(BaseModel):
    """An identity's body shape: what goes into every sample's provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="body model the values belong to (anny, smpl)")
    labels: list[str] = Field(description="names of the values")
    estimated: list[str] = Field(description="the values fitted to the images; the others are the population mean")
    uncalibrated: list[str] = Field(
        default_factory=list,
        description="the estimated values fitted to the masks without the clothing calibration (ShapeFitConfig)",
    )
    values: list[float]
    sd: list[float] = Field(description="posterior standard deviation per value, the spread between images included")
    spread: list[float] = Field(description="weighted standard deviation of the per-image estimates")
    parameter_confidence: list[float] = Field(description="per value, 1 - sd / population sd, in [0, 1]")
    confidence: float = Field(
        ge=0, le=1, description="1 - geometric mean of sd / population sd over the estimated values"
    )
    images_used: int
    images_total: int
    source: Literal["reference", "sampled"] = Field(
        description="fitted to the reference images, or drawn from the population"
    )
    fallback_reason: str | None = Field(None, description="why the fit was not used, when source is sampled")
    fitted_values: list[float] | None = Field(None, description="the fit that was not used, when source is sampled")


class IdentityShape(BaseModel):
    """An identity's estimate and the per-image answers it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    estimate: ShapeEstimate
    images: list[ImageShape]


__all__ = ["IdentityShape", "ImageShape", "ShapeEstimate", "ShapeFitConfig"]
