"""Pose estimation, the shared layer under conditions, filtering and analysis.

* :mod:`~posedive.pose.protocol`: ``PoseEstimate`` and the ``PoseEstimator`` protocol (image in,
  COCO-17 keypoints with confidences out);
* :mod:`~posedive.pose.registry`: estimators by name (``load_pose_estimator``);
* :mod:`~posedive.pose.blazepose`: the BlazePose estimator (mediapipe), loaded on first use;
* :mod:`~posedive.pose.keypoints`: keypoint sets, their conversions and the named groups recipes use;
* :mod:`~posedive.pose.cache`: estimator answers cached by image content.
"""

from .keypoints import (
    BLAZEPOSE33_KEYPOINTS,
    BLAZEPOSE_TO_COCO17,
    KEYPOINT_GROUPS,
    blazepose_to_coco17,
    coco17_to_openpose18,
)
from .protocol import PoseEstimate, PoseEstimator
from .registry import ESTIMATORS, load_pose_estimator

__all__ = [
    "BLAZEPOSE33_KEYPOINTS",
    "BLAZEPOSE_TO_COCO17",
    "ESTIMATORS",
    "KEYPOINT_GROUPS",
    "PoseEstimate",
    "PoseEstimator",
    "blazepose_to_coco17",
    "coco17_to_openpose18",
    "load_pose_estimator",
]
