"""Body shape from reference images, end to end: anny bodies of known builds rendered by the
conditions stage, seen by the real BlazePose (landmarks and segmentation), fitted by the real body
fitter, and their shape recovered; the real vtest crops give stable estimates per identity.

Tolerances (``TOLERANCE``) and what was measured (64x128 normal-map renders, the fitting tests'
walking pose, six views per build; errors = estimate - truth on anny's [0, 1] scales):

=============  ======  ======  ======  =====================================
build          gender  weight  height  what the build is
=============  ======  ======  ======  =====================================
average        +0.27   -0.01   +0.01   the population's mean
short, heavy   +0.28   +0.05   +0.11   gender 0.25, height 0.22, weight 0.95
tall, thin     -0.06   -0.02   -0.12   gender 0.75, height 0.55, weight 0.10
=============  ======  ======  ======  =====================================

The renders are bare bodies, so they are fitted with ``clothing="none"``; the real crops of dressed
people with the default street calibration (``posedive.fitting.clothing``), which takes off the
width clothes and the mask's bleed add; their gender is fitted on the masks as they are
(``ShapeFitConfig.uncalibrated``) and checked against labels by eye (``genders.json``).

Weight is what silhouettes show best; height only through proportions, since a crop has no metric
scale; gender through shoulders, chest and hips, the least certain of the three. Muscle,
proportions and age are not estimated by default and stay at the population mean.
"""

from __future__ import annotations

import numpy as np
import pytest
from pose_images import FIXTURE_MARKET, fixture_images, needs_fixture_market
from test_fitting_synthetic import walking_pose

from posedive.body.shape import ANNY_PHENOTYPES, AnnyPhenotype
from posedive.fitting import (
    ShapeCache,
    ShapeEstimator,
    ShapeFitConfig,
    ShapeObservation,
    Skeleton,
    estimate_identity_shape,
    identity_key,
    observe_shapes,
)
from posedive.geometry.cameras import camera_for

WIDTH, HEIGHT = 64, 128  # a Market-1501 crop
TOLERANCE = {"gender": 0.4, "weight": 0.15, "height": 0.15}
MEAN = dict(age=0.805, muscle=0.35, proportions=0.5)
BUILDS = {
    "average": AnnyPhenotype(gender=0.5, weight=0.56, height=0.37, **MEAN),
    "short_heavy": AnnyPhenotype(gender=0.25, weight=0.95, height=0.22, **MEAN),
    "tall_thin": AnnyPhenotype(gender=0.75, weight=0.1, height=0.55, **MEAN),
}
VIEWS = ((10, 0), (10, 45), (15, 90), (10, 180), (10, 250), (15, 315))  # (elevation, azimuth)
# Spread (weighted sd of the per-image estimates) allowed per vtest identity; measured at most
# gender 0.29, weight 0.19, height 0.08 over the 20 identities of the fixture.
REAL_SPREAD = {"gender": 0.35, "weight": 0.25, "height": 0.12}
REAL_IDENTITIES = ("0001", "0002", "0004", "0009", "0014")
INDEX = {name: i for i, name in enumerate(ANNY_PHENOTYPES)}


@pytest.fixture(scope="module")
def body():
    from posedive.body.models import AnnyBody

    return AnnyBody()


@pytest.fixture(scope="module")
def segmenting():
    from posedive.pose.blazepose import BlazePoseEstimator

    with BlazePoseEstimator(segmentation=True) as estimator:
        yield estimator


@pytest.fixture(scope="module")
def rendered(body, segmenting) -> dict[str, list[ShapeObservation]]:
    """Per build, the observations of its six normal-map renders."""
    try:
        from posedive.conditions.render import MeshRasterizer
    except ImportError as error:  # the conditions stage's optional rendering stack
        pytest.skip(f"cannot render conditions here: {error}")
    skeleton = Skeleton.from_body(body)
    rasterizer = MeshRasterizer(WIDTH, HEIGHT)
    out = {}
    try:
        for name, phenotype in BUILDS.items():
            images = []
            for k, (elevation, azimuth) in enumerate(VIEWS):
                posed = body.forward(walking_pose(1.0 if k % 2 else -1.0)[None], shape=phenotype)
                camera = camera_for(
                    posed.vertices[0],
                    elevation_deg=elevation,
                    azimuth_deg=azimuth,
                    fov_deg=30.0,
                    width=WIDTH,
                    height=HEIGHT,
                )
                images.append(rasterizer.render(posed.vertices[0], posed.faces, camera).normal)
            out[name] = observe_shapes(images, skeleton, estimator=segmenting)
    finally:
        rasterizer.close()
    return out


@pytest.fixture(scope="module")
def estimator(body) -> ShapeEstimator:
    """For the renders: bare bodies, so no clothing width is taken off their masks."""
    return ShapeEstimator(body, ShapeFitConfig(clothing="none"))


@pytest.fixture(scope="module")
def street(body) -> ShapeEstimator:
    """For real crops of dressed people: the default calibration."""
    return ShapeEstimator(body, ShapeFitConfig())


@pytest.fixture(scope="module")
def recovered(rendered, estimator):
    return {name: estimator.identity(observations, np.random.default_rng(0)) for name, observations in rendered.items()}


def test_known_builds_are_recovered_from_their_renders(recovered):
    errors = {}
    for name, result in recovered.items():
        estimate = result.estimate
        # BlazePose finds nobody in the short heavy build's back view: that image is left out with
        # its reason and the identity is fitted from the other five.
        reasons = [i.reason for i in result.images]
        assert estimate.source == "reference" and estimate.images_used >= len(VIEWS) - 1, reasons
        assert estimate.estimated == list(TOLERANCE) and estimate.confidence > 0.3
        truth = BUILDS[name].values()
        errors[name] = {p: estimate.values[INDEX[p]] - truth[INDEX[p]] for p in TOLERANCE}
        for fixed in ("age", "muscle", "proportions"):  # not estimated: the population mean, confidence 0
            assert estimate.parameter_confidence[INDEX[fixed]] == 0.0
            assert estimate.values[INDEX[fixed]] == pytest.approx(truth[INDEX[fixed]], abs=0.01)
    for name, error in errors.items():
        for parameter, tolerance in TOLERANCE.items():
            assert abs(error[parameter]) < tolerance, (name, errors)
    weight = {name: r.estimate.values[INDEX["weight"]] for name, r in recovered.items()}
    height = {name: r.estimate.values[INDEX["height"]] for name, r in recovered.items()}
    assert weight["short_heavy"] > weight["average"] + 0.2 > weight["tall_thin"] + 0.4
    # Height is seen through proportions only and shrinks towards the prior: the true gap of 0.33
    # between the tall and the short build comes out as 0.09-0.10 (BlazePose's landmarks differ in
    # the last digits between CPUs), so the order is asserted with a margin below that.
    assert height["tall_thin"] > height["short_heavy"] + 0.05 and height["average"] > height["short_heavy"]


def test_per_image_answers_carry_estimates_and_residuals(recovered):
    for result in recovered.values():
        for image in result.images:
            if not image.used:
                assert image.reason == "no person found by the pose estimator" and image.values is None
                continue
            assert image.residual < 3.0 and image.reason is None
            assert all(0.0 <= v <= 1.0 for v in image.values) and len(image.sd) == len(ANNY_PHENOTYPES)
        spread = result.estimate.spread
        assert spread[INDEX["weight"]] < 0.2 and spread[INDEX["height"]] < 0.1


def test_the_estimate_follows_the_silhouette_width(rendered, estimator, recovered):
    """The mask carries the build: the same keypoints and fits with every mask grown or shrunk by one
    pixel move the weight the corresponding way (an estimator that ignored the masks would not)."""
    import cv2

    kernel = np.ones((3, 3), np.uint8)

    def with_masks(change) -> float:
        changed = []
        for o in rendered["average"]:
            mask = change((o.mask > 0.5).astype(np.uint8), kernel).astype(np.float32)
            changed.append(ShapeObservation(o.keypoints, mask, o.fit, o.width, o.height))
        return estimator.identity(changed, np.random.default_rng(0)).estimate.values[INDEX["weight"]]

    original = recovered["average"].estimate.values[INDEX["weight"]]
    assert with_masks(cv2.dilate) > original + 0.15
    assert with_masks(cv2.erode) < original - 0.15


def test_without_a_usable_image_the_shape_is_sampled_and_says_so(body, segmenting, estimator):
    from posedive.fitting import FitConfig

    blank = [np.full((HEIGHT, WIDTH, 3), 200, dtype=np.uint8)] * 2
    quick = FitConfig(iterations=2, camera_iterations=2)  # nothing to fit in a blank image
    first = estimate_identity_shape(blank, body, seed=3, estimator=segmenting, fit_config=quick)
    observations = observe_shapes(blank, Skeleton.from_body(body), estimator=segmenting, fit_config=quick)
    again = estimator.identity(observations, np.random.default_rng(3))
    other = estimator.identity(observations, np.random.default_rng(4))
    estimate = first.estimate
    assert estimate.source == "sampled" and estimate.fallback_reason == "no usable reference image"
    assert estimate.fitted_values is None and estimate.images_used == 0 and estimate.images_total == 2
    assert estimate.confidence == 0.0 and all(0.0 <= v <= 1.0 for v in estimate.values)
    assert [i.reason for i in first.images] == ["no person found by the pose estimator"] * 2
    assert again.estimate.values == estimate.values and other.estimate.values != estimate.values


def test_low_confidence_falls_back_with_the_fit_kept(rendered, body):
    strict = ShapeEstimator(body, ShapeFitConfig(min_confidence=0.99, clothing="none"))
    estimate = strict.identity(rendered["tall_thin"][:2], np.random.default_rng(0)).estimate
    assert estimate.source == "sampled" and "below 0.99" in estimate.fallback_reason
    assert estimate.fitted_values is not None and estimate.images_used == 2


@needs_fixture_market
def test_real_crops_give_stable_estimates_per_identity(body, segmenting, street):
    skeleton = Skeleton.from_body(body)
    fitted = 0
    for pid in REAL_IDENTITIES:
        images = list(fixture_images(f"*/{pid}_*.jpg").values())
        observations = observe_shapes(images, skeleton, estimator=segmenting)
        result = street.identity(observations, np.random.default_rng(int(pid)))
        estimate = result.estimate
        assert estimate.images_used >= len(images) - 2, [i.reason for i in result.images]
        fitted += estimate.source == "reference"
        for parameter, limit in REAL_SPREAD.items():
            assert estimate.spread[INDEX[parameter]] < limit, (pid, parameter, estimate.spread)
    assert fitted >= len(REAL_IDENTITIES) - 1


@pytest.fixture(scope="module")
def demo_estimates(body, segmenting, street) -> dict[str, object]:
    """The shape estimates of the demo's 12 identities (none of them among the 8 the clothing
    calibration was measured on), from their training crops, with the default street calibration."""
    skeleton = Skeleton.from_body(body)
    pids = sorted({path.name.split("_")[0] for path in (FIXTURE_MARKET / "bounding_box_train").glob("*.jpg")})
    estimates = {}
    for pid in pids:
        images = list(fixture_images(f"bounding_box_train/{pid}_*.jpg").values())
        observations = observe_shapes(images, skeleton, estimator=segmenting)
        estimates[pid] = street.identity(observations, np.random.default_rng(int(pid))).estimate
    return estimates


@needs_fixture_market
def test_real_crops_give_weights_spread_over_the_population(demo_estimates):
    """Dressed people's masks are wider than their bodies; uncalibrated, every demo identity came out at
    weight 0.96-1.0. The demo's identities are taken as people from the population: the number fitted
    heavier than the population's top decile-or-so (weight > 0.9) must be one a draw of 12 people gives
    with probability at least 0.001, and their median weight must lie within the population's 10-90% range."""
    from math import comb

    from posedive.body.population import AnnyPopulation

    weights = [estimate.values[INDEX["weight"]] for estimate in demo_estimates.values()]
    population = AnnyPopulation().sample_values(np.random.default_rng(1), 20_000)[:, INDEX["weight"]]
    heavy_share = float((population > 0.9).mean())
    count = len(weights)
    heavy = int(sum(w > 0.9 for w in weights))
    # The largest count of heavy people among `count` whose upper tail probability is still >= 0.001.
    bound = max(k for k in range(count + 1)
                if sum(comb(count, j) * heavy_share**j * (1 - heavy_share) ** (count - j)
                       for j in range(k, count + 1)) >= 1e-3)  # fmt: skip
    assert count == 12 and heavy <= bound, (heavy, bound, heavy_share, np.round(weights, 2))
    low, high = np.quantile(population, [0.1, 0.9])
    assert low < float(np.median(weights)) < high, (low, high, np.round(weights, 2))


@needs_fixture_market
def test_the_clothing_calibration_keeps_the_demo_men_men(demo_estimates):
    """The calibration's excess width is largest at the waist and calves; taken off the masks before a
    gender fit, it left an hourglass, and 9 of the demo's 11 men came out female (gender > 0.5; anny:
    0 male, 1 female). Gender labelled by eye (``genders.json``): of the 11 men, at least 9 must be
    fitted below 0.5, a count a coin toss per man reaches with probability 67/2048 = 0.03, so a fit
    that could not tell men from women would rarely pass; and the fit says gender came from the
    uncalibrated masks."""
    import json
    from math import comb

    labels = json.loads((FIXTURE_MARKET / "genders.json").read_text())["demo"]
    assert sorted(labels) == sorted(demo_estimates)
    men = [pid for pid, label in labels.items() if label == "M"]
    male = [pid for pid in men if demo_estimates[pid].values[INDEX["gender"]] < 0.5]
    least = 9
    assert sum(comb(len(men), j) for j in range(least, len(men) + 1)) / 2 ** len(men) < 0.05
    genders = {pid: round(estimate.values[INDEX["gender"]], 2) for pid, estimate in demo_estimates.items()}
    assert len(men) == 11 and len(male) >= least, genders
    assert all(estimate.uncalibrated == ["gender"] for estimate in demo_estimates.values())


def test_cache_round_trip_and_key(tmp_path, recovered):
    cache = ShapeCache(tmp_path)
    key = identity_key(["b" * 64, "a" * 64], {"shape": ShapeFitConfig().model_dump(), "seed": 0})
    assert key == identity_key(["a" * 64, "b" * 64], {"seed": 0, "shape": ShapeFitConfig().model_dump()})
    assert key != identity_key(["a" * 64, "b" * 64], {"shape": ShapeFitConfig(noise=0.03).model_dump(), "seed": 0})
    assert cache.get(key) is None
    cache.put(key, recovered["average"])
    assert cache.get(key) == recovered["average"]
    cache.path(key).write_text("{ not json")
    assert cache.get(key) is None


def test_unknown_shape_parameters_are_refused(body):
    from posedive.errors import InputError

    with pytest.raises(InputError, match="strength") as error:
        ShapeEstimator(body, ShapeFitConfig(parameters=["weight", "strength"]))
    assert "proportions" in error.value.hint
    assert ShapeEstimator(body, ShapeFitConfig(parameters=["weight"])).space.free.tolist() == [INDEX["weight"]]


def test_smpl_shape_space_is_its_betas(tmp_path):
    from test_conditions_smpl import write_smpl_model

    from posedive.body.models import SMPLBody
    from posedive.fitting.shape import shape_space

    write_smpl_model(tmp_path)
    space = shape_space(SMPLBody(tmp_path))
    assert space.model == "smpl" and space.labels == tuple(f"beta{i}" for i in range(10))
    assert space.free.tolist() == list(range(10)) and np.all(space.mean == 0.0) and np.all(space.sd == 1.0)
    draw = space.sample(np.random.default_rng(0))
    assert draw.shape == (10,) and np.all(np.abs(draw) <= 3.0)


def test_a_calls_cached_rig_survives_the_eviction_its_new_shapes_cause(body, monkeypatch):
    """The shape fit poses a few candidate shapes per image, some cached, some new: adding the new ones
    to the full rig cache must not evict a cached one the same call needs."""
    from posedive.body import models

    monkeypatch.setattr(models, "RIG_CACHE", 2)
    shapes = np.tile(np.array([0.5, 0.805, 0.35, 0.56, 0.37, 0.5]), (3, 1))
    shapes[1, 0], shapes[2, 0] = 0.31, 0.93  # new genders
    body._rig(shapes[:1])  # cached, then the oldest of this call's three
    _, poses, _ = body._rig(shapes)
    assert poses.shape[0] == 3 and np.allclose(poses[0], body._rig(shapes[:1])[1])
