"""The filter equations (supplementary eqs. 10-13): at their boundaries on hand-made confidence
vectors, and on confidences BlazePose measures on real photographs."""

from __future__ import annotations

import numpy as np
import pytest
from pose_images import (
    blank,
    fixture_images,
    legs_cut,
    market_sized,
    needs_fixture_market,
    needs_opencv_data,
    pedestrian_crops,
)
from pydantic import ValidationError

from posedive.filtering import FilterDecision, generated_decision, reference_decision, target_decision
from posedive.recipe import KEYPOINT_GROUPS, FilterConfig
from posedive.schema import COCO17_KEYPOINTS

K = len(COCO17_KEYPOINTS)


def config(**overrides) -> FilterConfig:
    return FilterConfig(**overrides)


def vector(value: float, dtype=np.float64, **at: float) -> np.ndarray:
    conf = np.full(K, value, dtype=dtype)
    for name, v in at.items():
        conf[COCO17_KEYPOINTS.index(name)] = v
    return conf


# ------------------------------------------------------------------------------------------ eq. 10
@pytest.mark.parametrize("tau", [0.15, 0.6, 0.7, 0.9])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reference_minimum_equal_to_tau_is_kept(tau, dtype):
    decision = reference_decision(vector(1.0, dtype, left_ankle=tau), config(tau_ref=tau))
    assert decision.kept and decision.reason is None
    assert decision.scores["min_confidence"] == pytest.approx(tau, abs=1e-6)


def test_reference_just_below_tau_is_rejected_naming_the_joint():
    decision = reference_decision(vector(1.0, left_ankle=0.6 - 1e-4), config(tau_ref=0.6))
    assert not decision.kept
    assert "left_ankle" in decision.reason and "tau_ref 0.6" in decision.reason
    assert decision.stage == "reference" and len(decision.confidences) == K


def test_reference_uses_the_minimum_not_the_mean():
    conf = vector(1.0, right_knee=0.59)  # mean 0.976, one joint below
    assert not reference_decision(conf, config(tau_ref=0.6)).kept
    assert target_decision(conf, config(tau_tar=0.6)).kept


def test_reference_ignores_joints_outside_its_subset():
    conf = vector(0.9, left_wrist=0.0, nose=0.0)  # not among the default major joints
    assert "left_wrist" not in KEYPOINT_GROUPS["major_joints"]
    assert reference_decision(conf, config()).kept
    assert not reference_decision(conf, config(reference_keypoints="all")).kept
    assert not reference_decision(conf, config(reference_keypoints=["left_wrist", "left_hip"])).kept


# ------------------------------------------------------------------------------------------ eq. 11
def test_target_mean_equal_to_tau_is_kept_and_below_rejected():
    conf = np.linspace(0.2, 1.0, K)  # mean exactly 0.6
    assert target_decision(conf, config(tau_tar=0.6)).kept
    assert target_decision(conf.astype(np.float32), config(tau_tar=0.6)).kept
    below = conf.copy()
    below[0] -= 1e-3
    decision = target_decision(below, config(tau_tar=0.6))
    assert not decision.kept and "tau_tar 0.6" in decision.reason
    assert decision.scores["mean_confidence"] == pytest.approx(0.6 - 1e-3 / K)


def test_target_mean_over_a_subset():
    conf = vector(1.0, left_hip=0.0, right_hip=0.0)
    assert target_decision(conf, config(tau_tar=0.8)).kept  # mean over all 17: 0.88
    decision = target_decision(conf, config(tau_tar=0.8, target_keypoints="torso"))
    assert not decision.kept and decision.scores["mean_confidence"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------- eqs. 12-13
def test_generated_difference_equal_to_eps_is_kept():
    target = vector(0.9)
    generated = vector(0.7)  # |0.7 - 0.9| = 0.2 everywhere
    decision = generated_decision(generated, target, config(eps_gen=0.2, tau_gen=0.7))
    assert decision.kept
    assert decision.scores == pytest.approx({"mean_abs_difference": 0.2, "mean_confidence": 0.7})
    assert generated_decision(generated.astype(np.float32), target.astype(np.float32),
                              config(eps_gen=0.2, tau_gen=0.7)).kept


def test_generated_difference_above_eps_is_rejected():
    decision = generated_decision(vector(0.7), vector(0.9 + 1e-3), config(eps_gen=0.2, tau_gen=0.6))
    assert not decision.kept and "eps_gen 0.2" in decision.reason and "tau_gen" not in decision.reason


def test_generated_mean_below_tau_is_rejected_even_when_it_matches_the_target():
    decision = generated_decision(vector(0.5), vector(0.5), config(eps_gen=0.2, tau_gen=0.6))
    assert not decision.kept
    assert decision.scores["mean_abs_difference"] == 0.0
    assert "tau_gen 0.6" in decision.reason and "eps_gen" not in decision.reason


def test_generated_both_conditions_fail_and_both_are_reported():
    decision = generated_decision(vector(0.1), vector(0.9), config())
    assert not decision.kept and "eps_gen" in decision.reason and "tau_gen" in decision.reason


def test_generated_difference_is_a_mean_of_absolute_values():
    target = vector(0.8)
    generated = target.copy()
    generated[:8] += 0.1
    generated[8:16] -= 0.1  # signed differences cancel, absolute ones do not
    decision = generated_decision(generated, target, config(eps_gen=0.05))
    assert decision.scores["mean_abs_difference"] == pytest.approx(16 * 0.1 / K)
    assert not decision.kept


def test_generated_subset():
    target = vector(0.9)
    generated = vector(0.9, nose=0.0, left_eye=0.0, right_eye=0.0, left_ear=0.0, right_ear=0.0)
    assert not generated_decision(generated, target, config()).kept
    assert generated_decision(generated, target, config(generated_keypoints="body")).kept


# -------------------------------------------------------------------------------------- the object
def test_decision_is_frozen_and_round_trips_json():
    decision = reference_decision(vector(0.3), config())
    with pytest.raises(ValidationError):
        decision.kept = True
    assert FilterDecision.model_validate_json(decision.model_dump_json()) == decision


@pytest.mark.parametrize("bad", [np.ones(16), np.ones((17, 3)), vector(1.0, nose=1.5), vector(0.5, nose=np.nan)])
def test_bad_confidence_vectors_are_rejected(bad):
    with pytest.raises(ValueError, match="confidences"):
        reference_decision(bad, config())
    with pytest.raises(ValueError, match="confidences"):
        generated_decision(vector(0.9), bad, config())


# ------------------------------------------------------------------------------------ real images
@needs_opencv_data
def test_reference_filter_on_photographs(estimator):
    cfg = config()
    full = estimator.estimate([pedestrian_crops()["f200_front_b"]])[0]
    cut = estimator.estimate([legs_cut()])[0]
    nobody = estimator.estimate([blank()])[0]
    assert reference_decision(full.confidences, cfg).kept
    rejected = reference_decision(cut.confidences, cfg)
    assert not rejected.kept
    assert any(name in rejected.reason for name in ("knee", "ankle"))
    assert not reference_decision(nobody.confidences, cfg).kept


@needs_fixture_market
def test_reference_filter_rejects_the_fixture_junk_cut_by_the_frame_border(estimator):
    """Market-1501 marks boxes cut by the frame border as junk (pid -1); eq. 10 rejects them too."""
    junk = fixture_images("bounding_box_test/-1_*.jpg")
    assert junk
    for name, estimate in zip(junk, estimator.estimate(list(junk.values()))):
        decision = reference_decision(estimate.confidences, config())
        assert not decision.kept, name
        assert decision.scores["min_confidence"] < 0.6


@needs_opencv_data
def test_target_filter_on_photographs(estimator):
    cfg = config()
    kept = [target_decision(e.confidences, cfg).kept
            for e in estimator.estimate([market_sized(c) for c in pedestrian_crops().values()])]
    assert all(kept)
    assert not target_decision(estimator.estimate([blank()])[0].confidences, cfg).kept


@needs_opencv_data
def test_generated_filter_on_photographs(estimator):
    """The same person at another resolution matches the target pose; a legs-cut or empty image
    does not."""
    cfg = config()
    crop = pedestrian_crops()["f200_front"]
    target, same, cut, nobody = estimator.estimate([crop, market_sized(crop), legs_cut(), blank()])
    match = generated_decision(same.confidences, target.confidences, cfg)
    assert match.kept and match.scores["mean_abs_difference"] < 0.1
    mismatch = generated_decision(cut.confidences, target.confidences, cfg)
    assert not mismatch.kept and "eps_gen" in mismatch.reason
    assert mismatch.scores["mean_abs_difference"] > match.scores["mean_abs_difference"] + 0.1
    empty = generated_decision(nobody.confidences, target.confidences, cfg)
    assert not empty.kept and "tau_gen" in empty.reason


def test_target_filter_on_rendered_conditions(estimator, renders):
    """Eq. 11 is measured on the rendered target body: a full body keeps, the same render with the
    legs blacked out (as when a pose leaves the frame) does not."""
    cfg = config()
    normals = [conditions.normal for conditions in renders]
    decisions = [target_decision(e.confidences, cfg) for e in estimator.estimate(normals)]
    assert sum(d.kept for d in decisions) >= len(decisions) - 1
    front = normals[0].copy()
    front[int(front.shape[0] * 0.55):] = 0
    cut = target_decision(estimator.estimate([front])[0].confidences, config(target_keypoints="lower_body"))
    assert not cut.kept
