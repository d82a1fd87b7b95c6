"""Keypoint sets and the index maps between them.

BlazePose predicts the 33 landmarks of the BlazePose topology; the rest of posedive speaks COCO-17
(filter, statistics, provenance) and draws skeleton images in OpenPose-18 order. OpenPose's ``neck``
does not exist in COCO-17: it is the midpoint of the shoulders, with the lower of the two shoulder
confidences (a neck is only as visible as the shoulders that define it).
"""

from __future__ import annotations

import numpy as np

from ..schema import COCO17_KEYPOINTS, OPENPOSE18_KEYPOINTS

BLAZEPOSE33_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)

# COCO-17 joint k is BlazePose landmark BLAZEPOSE_TO_COCO17[k]; every COCO name exists in BlazePose.
BLAZEPOSE_TO_COCO17: tuple[int, ...] = tuple(BLAZEPOSE33_KEYPOINTS.index(name) for name in COCO17_KEYPOINTS)


def blazepose_to_coco17(landmarks: np.ndarray) -> np.ndarray:
    """Select the COCO-17 rows, in COCO order, from a (33, C) BlazePose landmark array."""
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 2 or landmarks.shape[0] != len(BLAZEPOSE33_KEYPOINTS):
        raise ValueError(f"expected (33, C) BlazePose landmarks, got shape {landmarks.shape}")
    return landmarks[list(BLAZEPOSE_TO_COCO17)]


def coco17_to_openpose18(keypoints: np.ndarray) -> np.ndarray:
    """(17, 3) COCO-17 ``x, y, confidence`` -> (18, 3) OpenPose-18, with the neck synthesised."""
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape != (len(COCO17_KEYPOINTS), 3):
        raise ValueError(f"expected (17, 3) COCO-17 keypoints, got shape {keypoints.shape}")
    left = keypoints[COCO17_KEYPOINTS.index("left_shoulder")]
    right = keypoints[COCO17_KEYPOINTS.index("right_shoulder")]
    neck = np.array([(left[0] + right[0]) / 2, (left[1] + right[1]) / 2, min(left[2], right[2])], dtype=np.float32)
    rows = [neck if name == "neck" else keypoints[COCO17_KEYPOINTS.index(name)] for name in OPENPOSE18_KEYPOINTS]
    return np.stack(rows).astype(np.float32)


# Named keypoint subsets a recipe's filter may average or minimise over (COCO-17 names).
KEYPOINT_GROUPS: dict[str, tuple[str, ...]] = {
    "all": COCO17_KEYPOINTS,
    "face": COCO17_KEYPOINTS[:5],
    "body": COCO17_KEYPOINTS[5:],
    "torso": ("left_shoulder", "right_shoulder", "left_hip", "right_hip"),
    "lower_body": COCO17_KEYPOINTS[11:],
    "major_joints": (
        "left_shoulder",
        "right_shoulder",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
}
