"""BlazePose's person segmentation, an option of the estimator that leaves its landmarks unchanged."""

from __future__ import annotations

import numpy as np
from pose_images import fixture_images, needs_fixture_market

from posedive.pose.blazepose import BlazePoseEstimator
from posedive.schema import COCO17_KEYPOINTS


@needs_fixture_market
def test_segmentation_is_an_extra_answer_on_the_image_grid(estimator):
    crops = fixture_images("bounding_box_train/000[1-3]_*.jpg")
    images = list(crops.values())
    assert len(images) == 18
    plain = estimator.analyse(images)
    with BlazePoseEstimator(segmentation=True) as segmenting:
        masked = segmenting.analyse(images)
    hips = [COCO17_KEYPOINTS.index("left_hip"), COCO17_KEYPOINTS.index("right_hip")]
    for image, a, b in zip(images, plain, masked):
        assert a.segmentation is None
        assert np.array_equal(a.landmarks, b.landmarks) and np.array_equal(a.world_landmarks, b.world_landmarks)
        mask = b.segmentation
        assert mask.shape == image.shape[:2] and mask.dtype == np.float32
        assert 0.0 <= mask.min() and mask.max() <= 1.0
        # On the person between the hips, off the person in the top corners.
        x, y = b.estimate.keypoints[hips, :2].mean(axis=0)
        assert mask[int(y), int(x)] > 0.5
        assert max(mask[0, 0], mask[0, -1]) < 0.5


def test_nobody_gives_no_mask():
    with BlazePoseEstimator(segmentation=True) as segmenting:
        result = segmenting.analyse([np.full((128, 64, 3), 200, dtype=np.uint8)])[0]
    assert not result.person_found and result.segmentation is None
