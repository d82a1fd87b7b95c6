"""Body shape from reference images: the body model's shape values for an identity, with a confidence.

Each image gives a target: the width profile of BlazePose's person segmentation (``shape_profile``).
The body fitter gives each image a pose and camera; posed and projected that way, the body model
gives the same profile for any shape. The shape is the maximum a posteriori fit of the model's
profiles to the targets of all the identity's images at once: Gauss-Newton with finite-difference
Jacobians over the estimated values (``ShapeFitConfig.parameters``; anny: gender, weight, height),
residuals in units of ``ShapeFitConfig.noise``, and the population's Gaussian prior
(``posedive.body.population``, its spread scaled by ``prior_scale``). Values not estimated keep the
population mean.

A dressed person's mask is wider than the bare body (clothes; on small crops the mask's bleed):
before fitting, the calibrated excess width of ``ShapeFitConfig.clothing`` (``clothing``; ``none``
for renders of bare bodies) is taken off every target profile. The values in
``ShapeFitConfig.uncalibrated`` (gender) are not fitted on the calibrated profiles, whose narrow
waist reads as a woman's build: the fit runs twice, first with every estimated value on the profiles
as they are, keeping those values, then with them held for the others on the calibrated profiles
(``ShapeEstimate.uncalibrated`` says which; their per-image estimates and spread come from the first
fit, the images' use and weights from the second).

Per image, the same linearisation gives the image's own estimate (one Newton step from the joint
estimate with that image's information alone), its standard deviations and its residual. Images are
weighted by a Cauchy function of their estimate's distance from the joint one, so a bad image cannot
drag the identity, and left out when the person, the torso or a mask is missing, the fit failed, or
the body cannot explain the silhouette (a residual above ``max_residual``: another person, a bag, an
occluder).

The identity's answer (``ShapeEstimate``) carries the spread of the per-image estimates, a posterior
standard deviation per value (the joint one plus the spread over the effective number of images),
and a confidence: how much of the population's uncertainty the images removed (per value
``1 - sd / population sd``; overall the same with the geometric mean of the ratios over the
estimated values). Below ``min_confidence``, or with no usable image, the identity falls back to a
shape drawn from the population and says so (``source: sampled``, with the unused fit).

What silhouettes tell apart, measured on renders of known anny bodies (``tests/test_fitting_shape.py``):
weight best, height through proportions only (a crop has no metric scale: a tall anny body has a
relatively smaller head and longer legs), gender through shoulders, chest and hips; muscle and
proportions hardly, so they are not estimated by default. The residual noise comes mostly from the
fitted pose: with the true pose a profile value deviates by ~0.005 statures, with the fitted one by
~0.02.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..body.population import AnnyPopulation, PopulationSpec
from ..errors import InputError
from ..geometry.cameras import project
from ..schema import COCO17_KEYPOINTS, OPENPOSE18_KEYPOINTS
from .clothing import clothing_widths
from .result import FitResult
from .shape_profile import body_frame, mask_profile, mesh_profile
from .shape_result import IdentityShape, ImageShape, ShapeEstimate, ShapeFitConfig
from .shape_solution import ShapeSolution

COCO_FROM_OPENPOSE = [OPENPOSE18_KEYPOINTS.index(name) for name in COCO17_KEYPOINTS]
ANNY_ESTIMATED: tuple[str, ...] = ("gender", "weight", "height")


@dataclass(frozen=True)
class ShapeObservation:
    """What shape estimation needs from one image."""

    keypoints: np.ndarray  # (17, 3) COCO-17 x, y, confidence
    mask: np.ndarray | None  # (H, W) person probability
    fit: FitResult | None  # the body fitter's pose and camera
    width: int
    height: int


@dataclass(frozen=True)
class ShapeSpace:
    """A body model's shape parameters: names, bounds, the population's mean and standard deviation."""

    model: str
    labels: tuple[str, ...]
    mean: np.ndarray
    sd: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    population: AnnyPopulation | None
    free: np.ndarray  # indices of the estimated values

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        if self.population is not None:
            return self.population.sample_values(rng, 1)[0]
        return np.clip(rng.normal(self.mean, self.sd), self.lower, self.upper)


def shape_space(body, population: PopulationSpec | None = None, parameters: Sequence[str] | None = None) -> ShapeSpace:
    """anny: its phenotypes, with the adult population; SMPL: its betas, standard normal (what SMPL's
    shape space is built as), within +-3. ``parameters``: the values to estimate."""
    labels = tuple(body.shape_labels)
    if parameters is None:
        parameters = ANNY_ESTIMATED if body.name == "anny" else labels
    unknown = [name for name in parameters if name not in labels]
    if unknown or not parameters:
        raise InputError(
            f"shape parameters {list(parameters)}: {unknown or 'none'} not among {body.name}'s shape values",
            hint=f"choose one or more of {', '.join(labels)}",
        )
    free = np.array([labels.index(name) for name in parameters])
    count = len(labels)
    if body.name == "anny":
        people = AnnyPopulation(population)
        mean, sd = people.prior()
        return ShapeSpace("anny", labels, mean, sd, np.zeros(count), np.ones(count), people, free)
    return ShapeSpace(
        body.name, labels, np.zeros(count), np.ones(count), np.full(count, -3.0), np.full(count, 3.0), None, free
    )


class ShapeEstimator:
    """Shape of one body model from observations; see the module docstring."""

    def __init__(self, body, config: ShapeFitConfig | None = None) -> None:
        self.body = body
        self.config = config or ShapeFitConfig()
        self.space = shape_space(body, self.config.population, self.config.parameters)
        self.clothing = clothing_widths(self.config.clothing, self.config.bins)

    def profiles(
        self, fit: FitResult, shapes: np.ndarray, image_keypoints: np.ndarray, width: int, height: int
    ) -> np.ndarray:
        """(S, bins) profiles of the body in the fit's pose and camera, for each of ``shapes``."""
        shapes = np.asarray(shapes, dtype=np.float64)
        poses = np.repeat(np.asarray(fit.pose, dtype=np.float64)[None], len(shapes), axis=0)
        out = self.body.forward(poses, shape=shapes)
        rows = []
        for index in range(len(shapes)):
            pixels = project(out.vertices[index], fit.camera)[:, :2]
            keypoints = project(out.keypoints[index], fit.camera)[:, :2][COCO_FROM_OPENPOSE]
            profile, _ = mesh_profile(pixels, out.faces, keypoints, image_keypoints, width, height, self.config.bins)
            rows.append(profile)
        return np.array(rows)

    def _target(self, observation: ShapeObservation) -> tuple[str | None, np.ndarray | None]:
        """The image's target profile, or why the image cannot be used."""
        config = self.config
        if observation.fit is None or float(np.max(observation.keypoints[:, 2])) <= 0.0:
            return "no person found by the pose estimator", None
        if body_frame(observation.keypoints, config.min_torso_confidence) is None:
            return f"torso keypoints below confidence {config.min_torso_confidence}", None
        if not observation.fit.success:
            return f"body fit failed: {observation.fit.reason}", None
        if observation.mask is None:
            return "no person segmentation", None
        target, stature = mask_profile(observation.mask, observation.keypoints, config.bins)
        if not np.isfinite(stature) or np.isfinite(target).sum() < config.bins // 2:
            return "the segmentation does not cover the person", None
        # The body model is bare: the width clothes and the mask's bleed add is taken off first.
        return None, target - self.clothing

    def _linearise(self, observation: ShapeObservation, target: np.ndarray, estimate: np.ndarray, free: np.ndarray):
        """Jacobian (P, M) and residual (M,) of one image's profile at ``estimate``, in noise units;
        None when too few slices can be compared."""
        config, space = self.config, self.space
        steps = np.where(estimate + config.step <= space.upper, config.step, -config.step)[free]
        shapes = np.tile(estimate, (len(free) + 1, 1))
        shapes[1 + np.arange(len(free)), free] += steps
        profiles = self.profiles(observation.fit, shapes, observation.keypoints, observation.width, observation.height)
        valid = np.isfinite(target) & np.isfinite(profiles).all(axis=0)
        if valid.sum() < config.bins // 2:
            return None
        jacobian = (profiles[1:, valid] - profiles[0, valid]) / steps[:, None] / config.noise
        return jacobian, (target[valid] - profiles[0, valid]) / config.noise

    def identity(self, observations: Sequence[ShapeObservation], rng: np.random.Generator) -> IdentityShape:
        """The identity's shape from all its images at once; see the module docstring."""
        import torch

        threads = torch.get_num_threads()
        if self.config.threads is not None:
            torch.set_num_threads(self.config.threads)
        try:
            return self._identity(observations, rng)
        finally:
            torch.set_num_threads(threads)

    def _identity(self, observations: Sequence[ShapeObservation], rng: np.random.Generator) -> IdentityShape:
        space = self.space
        checks = [self._target(observation) for observation in observations]
        held = self._uncalibrated()
        if held.size == 0:
            solution = self._solve(observations, checks, self.clothing, space.free, space.mean)
        else:
            # The calibration's excess is largest at the waist and calves; taken off, it leaves an
            # hourglass that reads as a woman's build. The held values come from the masks as they are.
            first = self._solve(observations, checks, np.zeros_like(self.clothing), space.free, space.mean)
            centre = space.mean.copy()
            centre[held] = first.estimate[held]
            rest = np.setdiff1d(space.free, held)
            second = self._solve(observations, checks, self.clothing, rest, centre)
            solution = second.joined(first, held, space.free)
        return self._answer(solution, rng)

    def _uncalibrated(self) -> np.ndarray:
        """Indices of the estimated values fitted before the clothing calibration is taken off (none
        without a calibration, or when every estimated value would be)."""
        if not self.clothing.any():
            return np.array([], dtype=np.int64)
        names = set(self.config.uncalibrated)
        held = np.array([i for i in self.space.free if self.space.labels[i] in names], dtype=np.int64)
        return held if held.size < self.space.free.size else np.array([], dtype=np.int64)

    def _solve(self, observations, checks, clothing: np.ndarray, free: np.ndarray, centre: np.ndarray) -> ShapeSolution:
        """The MAP fit of the values ``free`` (the others held at ``centre``) to the targets less
        ``clothing``; per image its own estimate, sd, residual and weight."""
        config, space = self.config, self.space
        lower, upper = space.lower[free], space.upper[free]
        mean, prior_sd = centre[free], space.sd[free] * config.prior_scale
        precision = np.diag(1.0 / prior_sd**2)
        reasons = [reason for reason, _ in checks]
        targets = [None if target is None else target + self.clothing - clothing for _, target in checks]
        count = len(observations)
        weights = np.array([1.0 if reason is None else 0.0 for reason in reasons])
        own_values, own_sd = np.tile(mean, (count, 1)), np.tile(prior_sd, (count, 1))
        residuals = np.full(count, np.nan)
        estimate = centre.copy()
        matrix = precision
        for _ in range(config.iterations):
            matrix, gradient = precision.copy(), -precision @ (estimate[free] - mean)
            for i, (observation, target) in enumerate(zip(observations, targets)):
                if reasons[i] is not None:
                    continue
                linear = self._linearise(observation, target, estimate, free)
                if linear is None:
                    reasons[i], weights[i] = "the body model's silhouette does not fit the image", 0.0
                    continue
                jacobian, residual = linear
                information, pull = jacobian @ jacobian.T, jacobian @ residual
                residuals[i] = float(np.sqrt(np.mean(residual**2)))
                # The image alone: one Newton step from the joint estimate, with its own information.
                own = information + precision
                step = np.linalg.solve(own, pull - precision @ (estimate[free] - mean))
                own_values[i] = np.clip(estimate[free] + step, lower, upper)
                own_sd[i] = np.sqrt(np.diag(np.linalg.inv(own)))
                matrix += weights[i] * information
                gradient += weights[i] * pull
            estimate[free] = np.clip(estimate[free] + np.linalg.solve(matrix, gradient), lower, upper)
            for i in range(count):
                if reasons[i] is None:
                    distance = np.sqrt(np.mean(((own_values[i] - estimate[free]) / space.sd[free]) ** 2))
                    explained = float(residuals[i] <= config.max_residual)
                    weights[i] = explained / (1.0 + (distance / config.outlier_scale) ** 2)
        return ShapeSolution(
            estimate, np.diag(np.linalg.inv(matrix)), own_values, own_sd, weights, residuals, reasons, free
        )

    def _answer(self, solution: ShapeSolution, rng: np.random.Generator) -> IdentityShape:
        config, space = self.config, self.space
        free, reasons, weights, residuals = space.free, solution.reasons, solution.weights, solution.residuals
        images = []
        for i in range(len(reasons)):
            if reasons[i] is None and not residuals[i] <= config.max_residual:
                reasons[i] = (
                    f"silhouette not explained by the body (residual {residuals[i]:.1f} > {config.max_residual})"
                )
                weights[i] = 0.0
            if np.isnan(residuals[i]):
                images.append(ImageShape(used=False, reason=reasons[i]))
                continue
            values, sd = space.mean.copy(), space.sd.copy()
            values[free], sd[free] = solution.own_values[i], solution.own_sd[i]
            images.append(
                ImageShape(
                    used=reasons[i] is None,
                    reason=reasons[i],
                    values=[float(v) for v in values],
                    sd=[float(v) for v in sd],
                    residual=float(residuals[i]),
                )
            )
        held = [space.labels[i] for i in self._uncalibrated()]
        summary = self._summary(
            solution.estimate, solution.variance, solution.own_values, weights, len(images), rng, held
        )
        return IdentityShape(estimate=summary, images=images)

    def _summary(self, estimate, variance, own_values, weights, total: int, rng, held: list[str]) -> ShapeEstimate:
        """Spread, standard deviations, confidence and the fallback decision; values not estimated
        keep the population's mean and standard deviation (confidence 0)."""
        config, space = self.config, self.space
        free = space.free
        used = weights > 0
        sd, spread = space.sd.copy(), np.zeros(len(space.labels))
        if used.any():
            w = weights[used]
            spread[free] = np.sqrt(w @ (own_values[used] - estimate[free]) ** 2 / w.sum())
            effective = w.sum() ** 2 / (w**2).sum()
            sd[free] = np.sqrt(variance + spread[free] ** 2 / effective)
        ratio = np.minimum(sd / space.sd, 1.0)
        confidence = float(1.0 - np.exp(np.mean(np.log(np.maximum(ratio[free], 1e-9))))) if used.any() else 0.0
        reason = None
        if not used.any():
            reason = "no usable reference image"
        elif confidence < config.min_confidence:
            reason = f"confidence {confidence:.2f} below {config.min_confidence}"
        common = dict(
            model=space.model,
            labels=list(space.labels),
            estimated=[space.labels[i] for i in free],
            uncalibrated=held,
            sd=[float(v) for v in sd],
            spread=[float(v) for v in spread],
            parameter_confidence=[float(v) for v in 1.0 - ratio],
            confidence=confidence,
            images_used=int(used.sum()),
            images_total=total,
        )
        if reason is None:
            return ShapeEstimate(values=[float(v) for v in estimate], source="reference", **common)
        return ShapeEstimate(
            values=[float(v) for v in space.sample(rng)],
            source="sampled",
            fallback_reason=reason,
            fitted_values=[float(v) for v in estimate] if used.any() else None,
            **common,
        )


def observe_shapes(
    images: Sequence[np.ndarray], skeleton, *, estimator=None, fit_config=None
) -> list[ShapeObservation]:
    """BlazePose (with segmentation) and the body fitter on RGB uint8 images, one person each.

    ``estimator``: a ``BlazePoseEstimator`` made with ``segmentation=True`` (one is made and closed
    when omitted); ``skeleton``: the fitter's ``Skeleton`` of the body model."""
    from ..pose.blazepose import BlazePoseEstimator
    from .fitter import fit_observations
    from .landmarks import observation_from_blazepose

    owned = estimator is None
    estimator = estimator or BlazePoseEstimator(segmentation=True)
    try:
        results = estimator.analyse(list(images))
    finally:
        if owned:
            estimator.close()
    sizes = [(image.shape[1], image.shape[0]) for image in images]
    observations = [
        observation_from_blazepose(r.landmarks, r.world_landmarks, w, h) for r, (w, h) in zip(results, sizes)
    ]
    fits = fit_observations(observations, skeleton, fit_config)
    return [
        ShapeObservation(
            keypoints=np.asarray(r.estimate.keypoints, dtype=np.float64),
            mask=r.segmentation,
            fit=fit if r.person_found else None,
            width=w,
            height=h,
        )
        for r, fit, (w, h) in zip(results, fits, sizes)
    ]


def estimate_identity_shape(
    images: Sequence[np.ndarray],
    body,
    *,
    seed: int = 0,
    config: ShapeFitConfig | None = None,
    estimator=None,
    skeleton=None,
    fit_config=None,
) -> IdentityShape:
    """An identity's body shape from its reference images (RGB uint8, one person each).

    ``body``: the body model (``posedive.body.models``); ``seed`` seeds the fallback draw (derive it
    from the identity, so a rebuild draws the same body)."""
    from .skeleton import Skeleton

    skeleton = skeleton or Skeleton.from_body(body)
    observations = observe_shapes(images, skeleton, estimator=estimator, fit_config=fit_config)
    return ShapeEstimator(body, config).identity(observations, np.random.default_rng(seed))


__all__ = [
    "IdentityShape",
    "ImageShape",
    "ShapeEstimate",
    "ShapeEstimator",
    "ShapeFitConfig",
    "ShapeObservation",
    "ShapeSpace",
    "estimate_identity_shape",
    "observe_shapes",
    "shape_space",
]
