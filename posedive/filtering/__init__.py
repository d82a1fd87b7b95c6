"""Quality filtering with a 2D pose estimator (supplementary sections 5-6) and pose statistics.

* ``load_pose_estimator(name)`` builds a ``PoseEstimator`` (BlazePose by default) whose per-keypoint
  confidences feed the filter;
* ``protocol``: the paper's eqs. 10-13 as pure functions returning ``FilterDecision``;
* ``orientation`` and ``embedding``: body azimuth relative to the camera and normalised pose vectors,
  used by ``posedive stats`` (``stats``, ``plots``) and by the evaluation splits.

Heavy libraries (mediapipe, matplotlib) are imported only where they are used.
"""

from .estimators import ESTIMATORS, load_pose_estimator
from .keypoints import BLAZEPOSE33_KEYPOINTS, BLAZEPOSE_TO_COCO17, blazepose_to_coco17, coco17_to_openpose18
from .protocol import FilterDecision, generated_decision, reference_decision, target_decision

__all__ = [
    "BLAZEPOSE33_KEYPOINTS",
    "BLAZEPOSE_TO_COCO17",
    "ESTIMATORS",
    "FilterDecision",
    "blazepose_to_coco17",
    "coco17_to_openpose18",
    "generated_decision",
    "load_pose_estimator",
    "reference_decision",
    "target_decision",
]
