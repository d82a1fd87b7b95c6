"""Body models with a shape: anny's phenotype and SMPL's betas, given to the model or per call, and
the adult population that ``sampled`` bodies and the shape estimator's prior come from."""

from __future__ import annotations

import numpy as np
import pytest

from posedive.body.models import AnnyBody, SMPLBody
from posedive.body.population import AnnyPopulation, PopulationSpec
from posedive.body.shape import ANNY_PHENOTYPES, AnnyPhenotype
from posedive.geometry.rotations import SMPL_JOINTS

J = {name: i for i, name in enumerate(SMPL_JOINTS)}
TALL_THIN = AnnyPhenotype(age=0.8, height=0.6, weight=0.1)
SHORT_HEAVY = AnnyPhenotype(age=0.8, height=0.2, weight=0.95, gender=0.2)


@pytest.fixture(scope="module")
def body() -> AnnyBody:
    return AnnyBody()


def walking(count: int) -> np.ndarray:
    poses = np.zeros((count, 24, 3))
    poses[:, J["left_hip"], 0] = np.linspace(-0.5, 0.5, count)
    poses[:, J["right_knee"], 0] = 0.4
    poses[:, J["left_shoulder"], 2] = -1.2
    return poses.reshape(count, 72)


def stature(vertices: np.ndarray) -> float:
    return float(vertices[:, 1].max() - vertices[:, 1].min())


def test_the_default_body_is_the_neutral_phenotype(body):
    assert body.shape() == [0.5] * 6 and body.shape_labels == ANNY_PHENOTYPES
    assert body.phenotype() == AnnyPhenotype()
    poses = walking(3)
    own, given = body.forward(poses), body.forward(poses, shape=[0.5] * 6)
    assert np.array_equal(own.vertices, given.vertices) and np.array_equal(own.keypoints, given.keypoints)


def test_a_phenotype_given_to_the_model_or_per_call_is_the_same_body(body):
    poses = walking(2)
    tall = AnnyBody(phenotype=TALL_THIN)
    assert tall.shape() == TALL_THIN.values()
    assert np.array_equal(tall.forward(poses).vertices, body.forward(poses, shape=TALL_THIN).vertices)
    # One shape per pose in a batch equals each shape on its own.
    both = body.forward(poses, shape=np.array([TALL_THIN.values(), SHORT_HEAVY.values()]))
    assert np.allclose(both.vertices[1], body.forward(poses[1:], shape=SHORT_HEAVY).vertices[0], atol=1e-6)
    assert np.allclose(both.joints[0], tall.forward(poses[:1]).joints[0], atol=1e-6)


def test_builds_differ_where_they_should(body):
    rest = np.zeros((1, 72))
    neutral, tall, short = (body.forward(rest, shape=s).vertices[0] for s in (AnnyPhenotype(), TALL_THIN, SHORT_HEAVY))
    assert stature(tall) > stature(neutral) + 0.2 and stature(short) < stature(neutral)

    def waist_width(vertices: np.ndarray) -> float:
        # Mesh width at 55 % of the stature, torso only (the T-pose arms are above it).
        low, high = vertices[:, 1].min(), vertices[:, 1].max()
        level = np.abs(vertices[:, 1] - (low + 0.55 * (high - low))) < 0.01
        return float(np.ptp(vertices[level, 0])) / (high - low)

    assert waist_width(short) > waist_width(neutral) > waist_width(tall)


def test_body_gender_names_the_body_anny_draws_for_it():
    """anny's gender axis runs from male (0) to female (1): a ``male`` body is taller and broader in
    the chest relative to its hips than a ``female`` one, the other phenotypes being equal."""
    rest = np.zeros((1, 72))

    def stature_and_chest_to_hips(gender: str) -> tuple[float, float]:
        vertices = AnnyBody(gender=gender).forward(rest).vertices[0]
        low, high = vertices[:, 1].min(), vertices[:, 1].max()

        def width(fraction: float) -> float:
            level = np.abs(vertices[:, 1] - (low + fraction * (high - low))) < 0.01
            return float(np.ptp(vertices[level, 0]))

        return float(high - low), width(0.72) / width(0.5)

    male, female = stature_and_chest_to_hips("male"), stature_and_chest_to_hips("female")
    assert male[0] > female[0] + 0.05
    assert male[1] > female[1] + 0.1


def test_every_build_keeps_the_t_pose_and_the_pelvis_at_the_origin(body):
    """The retargeting's rest corrections are recomputed per phenotype: arms stay horizontal."""
    for phenotype in (TALL_THIN, SHORT_HEAVY):
        joints = body.forward(np.zeros((1, 72)), shape=phenotype).joints[0]
        assert np.allclose(joints[J["pelvis"]], 0.0, atol=1e-6)
        for side, sign in (("left", 1.0), ("right", -1.0)):
            arm = joints[J[f"{side}_elbow"]] - joints[J[f"{side}_shoulder"]]
            assert np.degrees(np.arccos(sign * arm[0] / np.linalg.norm(arm))) < 3.0


def test_shape_arguments_are_checked(body):
    with pytest.raises(ValueError, match="gender"):
        AnnyBody(gender="male", phenotype=TALL_THIN)
    with pytest.raises(ValueError, match="6 values"):
        body.forward(walking(1), shape=[0.5, 0.5])
    with pytest.raises(ValueError, match="one row of them per pose"):
        body.forward(walking(3), shape=np.full((2, 6), 0.5))
    with pytest.raises(ValueError):
        AnnyPhenotype(weight=1.5)


def test_smpl_betas_given_to_the_model_or_per_call(tmp_path):
    from test_conditions_smpl import write_smpl_model

    write_smpl_model(tmp_path)
    plain, taller = SMPLBody(tmp_path), SMPLBody(tmp_path, betas=[3.0])
    assert plain.shape_labels == tuple(f"beta{i}" for i in range(10)) and taller.shape()[0] == 3.0
    poses = np.zeros((2, 72))
    betas = [3.0] + [0.0] * 9
    assert np.allclose(plain.forward(poses, shape=betas).vertices, taller.forward(poses).vertices)
    assert stature(taller.forward(poses).vertices[0]) > stature(plain.forward(poses).vertices[0])


def test_population_draws_are_adults_and_depend_on_the_seed_alone():
    people = AnnyPopulation()
    first = people.sample_values(np.random.default_rng(7), 2000)
    assert np.array_equal(first, AnnyPopulation().sample_values(np.random.default_rng(7), 2000))
    assert first.shape == (2000, 6) and (first >= 0).all() and (first <= 1).all()
    age = first[:, ANNY_PHENOTYPES.index("age")]
    assert age.min() > 0.76 and age.max() < 0.86  # anny's age axis for 18-70 years
    male = first[:, 0] <= 0.5
    height = first[:, ANNY_PHENOTYPES.index("height")]
    assert height[male].mean() > height[~male].mean() + 0.02  # anny's boys are the taller group
    mean, sd = people.prior()
    assert np.allclose(mean, [0.50, 0.805, 0.35, 0.56, 0.37, 0.50], atol=0.01)
    assert np.allclose(sd, [0.29, 0.021, 0.28, 0.33, 0.078, 0.29], atol=0.01)
    with pytest.raises(ValueError, match="below min_age_years"):
        PopulationSpec(min_age_years=40, max_age_years=30)


def test_a_body_model_the_recipe_cannot_have_is_a_recipe_error_naming_the_field():
    from posedive.body.models import load_body_model
    from posedive.errors import RecipeError

    with pytest.raises(RecipeError, match="body.smpl_model_dir") as missing_dir:
        load_body_model("smpl")
    assert "SMPL_NEUTRAL.pkl" in missing_dir.value.hint
    with pytest.raises(RecipeError, match="body.model: unknown body model 'star'; known: anny, smpl"):
        load_body_model("star")  # type: ignore[arg-type]
