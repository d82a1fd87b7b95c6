"""Pose estimation: the shared layer that conditions, filtering, fitting and analysis read 2D poses from.

It imports nothing but the foundation (``posedive.schema``, ``posedive.paths``, ``posedive.errors``),
and no model package until an estimator is built.

* :mod:`~posedive.pose.protocol`: ``PoseEstimate`` and the ``PoseEstimator`` protocol (images in,
  COCO-17 keypoints with confidences out);
* :mod:`~posedive.pose.registry`: estimators by name (``load_pose_estimator``, ``check_estimator_name``);
* :mod:`~posedive.pose.blazepose`: the BlazePose estimator (MediaPipe, imported when one is built);
* :mod:`~posedive.pose.keypoints`: keypoint sets, their conversions and the named groups recipes use;
* :mod:`~posedive.pose.cache`: estimator answers cached by image content.
"""

from .blazepose import BlazePoseEstimator, BlazePoseResult
from .cache import PoseCache, PoseRecord, content_key, default_cache_dir
from .keypoints import (
    BLAZEPOSE33_KEYPOINTS,
    BLAZEPOSE_TO_COCO17,
    KEYPOINT_GROUPS,
    blazepose_to_coco17,
    coco17_to_openpose18,
)
from .protocol import PoseEstimate, PoseEstimator
from .registry import ESTIMATORS, UnknownEstimator, check_estimator_name, load_pose_estimator

__all__ = [
    "BLAZEPOSE33_KEYPOINTS",
    "BLAZEPOSE_TO_COCO17",
    "ESTIMATORS",
    "KEYPOINT_GROUPS",
    "BlazePoseEstimator",
    "BlazePoseResult",
    "PoseCache",
    "PoseEstimate",
    "PoseEstimator",
    "PoseRecord",
    "UnknownEstimator",
    "blazepose_to_coco17",
    "check_estimator_name",
    "coco17_to_openpose18",
    "content_key",
    "default_cache_dir",
    "load_pose_estimator",
]
