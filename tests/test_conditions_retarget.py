"""SMPL-24 -> anny retargeting, and DeepMimic -> SMPL-24 conversion.

Tolerance: anny's limbs must point where SMPL's do within 12 degrees. What remains at that level is
the two bodies' own rest proportions (anny's shins and head tilt a few degrees off SMPL's), constant
over poses, which the test on bank poses shows.
"""

from __future__ import annotations

import numpy as np
import pytest

from posedive.body.models import AnnyBody
from posedive.conditions.posebank import deepmimic_clip_paths, deepmimic_frames_to_smpl, read_deepmimic_clip
from posedive.geometry.rotations import SMPL_JOINTS, smpl_skeleton

TOLERANCE_DEG = 12.0
# posedive's reference SMPL skeleton has rest offsets a few degrees off the axes.
SKELETON_TOLERANCE_DEG = 8.0
J = {name: i for i, name in enumerate(SMPL_JOINTS)}


@pytest.fixture(scope="module")
def anny_body() -> AnnyBody:
    return AnnyBody()


def _pose(**joints) -> np.ndarray:
    pose = np.zeros(72)
    for name, value in joints.items():
        pose[3 * J[name] : 3 * J[name] + 3] = value
    return pose


def _direction(joints: np.ndarray, a: str, b: str) -> np.ndarray:
    v = joints[J[b]] - joints[J[a]]
    return v / np.linalg.norm(v)


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1.0, 1.0))))


CASES = [
    # (SMPL pose, segment, expected world direction): world is y up, body facing +z, left on +x.
    ("rest: left arm sideways", _pose(), ("left_shoulder", "left_elbow"), (1.0, 0.0, 0.0)),
    ("rest: right arm sideways", _pose(), ("right_shoulder", "right_elbow"), (-1.0, 0.0, 0.0)),
    ("left arm raised", _pose(left_shoulder=(0, 0, np.pi / 2)), ("left_shoulder", "left_elbow"), (0.0, 1.0, 0.0)),
    ("right arm raised", _pose(right_shoulder=(0, 0, -np.pi / 2)), ("right_shoulder", "right_elbow"), (0.0, 1.0, 0.0)),
    ("left arm forward", _pose(left_shoulder=(0, -np.pi / 2, 0)), ("left_shoulder", "left_elbow"), (0.0, 0.0, 1.0)),
    ("left elbow bent forward", _pose(left_elbow=(0, -np.pi / 2, 0)), ("left_elbow", "left_wrist"), (0.0, 0.0, 1.0)),
    ("left knee bent 90", _pose(left_knee=(np.pi / 2, 0, 0)), ("left_knee", "left_ankle"), (0.0, 0.0, -1.0)),
    ("right hip flexed 90", _pose(right_hip=(-np.pi / 2, 0, 0)), ("right_hip", "right_knee"), (0.0, 0.0, 1.0)),
    ("turned 90: left arm now points back", _pose(pelvis=(0, np.pi / 2, 0)), ("left_shoulder", "left_elbow"), (0.0, 0.0, -1.0)),
    ("turned 90: hips left-right axis", _pose(pelvis=(0, np.pi / 2, 0)), ("right_hip", "left_hip"), (0.0, 0.0, -1.0)),
]  # fmt: skip


@pytest.mark.parametrize("name,pose,segment,expected", CASES, ids=[c[0] for c in CASES])
def test_known_smpl_poses_move_anny_joints(anny_body, name, pose, segment, expected):
    joints = anny_body.forward(pose[None]).joints[0]
    assert _angle(_direction(joints, *segment), np.asarray(expected)) < TOLERANCE_DEG


def test_spine_bend_spreads_over_anny_spine(anny_body):
    """1.5 rad forward about x, spread over SMPL's three spine joints: the neck-to-head line turns by
    all of it, the lower spine by part of it, and the body leans forwards."""
    from posedive.geometry.rotations import axis_angle_to_matrix

    rest = anny_body.forward(_pose()[None]).joints[0]
    bent = anny_body.forward(_pose(spine1=(0.5, 0, 0), spine2=(0.5, 0, 0), spine3=(0.5, 0, 0))[None]).joints[0]
    turned = axis_angle_to_matrix(np.array([1.5, 0.0, 0.0])) @ _direction(rest, "neck", "head")
    assert _angle(_direction(bent, "neck", "head"), turned) < TOLERANCE_DEG
    lower = _angle(_direction(bent, "spine1", "spine2"), _direction(rest, "spine1", "spine2"))
    assert 15.0 < lower < 75.0
    assert bent[J["head"], 2] - rest[J["head"], 2] > 0.3


def test_posed_joints_move_and_others_stay(anny_body):
    rest = anny_body.forward(_pose()[None]).joints[0]
    bent = anny_body.forward(_pose(left_knee=(np.pi / 2, 0, 0))[None]).joints[0]
    moved = np.linalg.norm(bent - rest, axis=1)
    assert moved[J["left_ankle"]] > 0.3
    untouched = [J[n] for n in ("right_ankle", "right_knee", "head", "left_wrist", "right_wrist", "left_knee")]
    assert np.all(moved[untouched] < 1e-4)


def test_anny_follows_smpl_skeleton_on_bank_poses(anny_body):
    clip = read_deepmimic_clip(deepmimic_clip_paths()[0])
    poses = deepmimic_frames_to_smpl(clip[:: max(1, len(clip) // 12)])
    anny = anny_body.forward(poses).joints
    smpl = smpl_skeleton(poses)
    for a, b in [("left_shoulder", "left_elbow"), ("right_elbow", "right_wrist"), ("left_hip", "left_knee"),
                 ("right_knee", "right_ankle"), ("pelvis", "neck"), ("neck", "head")]:  # fmt: skip
        for k in range(len(poses)):
            assert _angle(_direction(anny[k], a, b), _direction(smpl[k], a, b)) < TOLERANCE_DEG, (a, b, k)


def _deepmimic_frame(**values) -> np.ndarray:
    """A DeepMimic humanoid frame at rest (identity quaternions, straight knees and elbows)."""
    frame = np.zeros(44)
    frame[0] = 1 / 30
    frame[2] = 0.9
    for start in (4, 8, 12, 16, 21, 25, 30, 35, 39):
        frame[start] = 1.0  # w of each quaternion
    for index, value in values.items():
        frame[int(index.removeprefix("i"))] = value
    return frame


def test_deepmimic_rest_has_arms_down_and_faces_forward():
    joints = smpl_skeleton(deepmimic_frames_to_smpl(_deepmimic_frame()[None]))[0]
    assert _angle(_direction(joints, "left_shoulder", "left_elbow"), np.array([0, -1, 0])) < SKELETON_TOLERANCE_DEG
    assert _angle(_direction(joints, "right_elbow", "right_wrist"), np.array([0, -1, 0])) < SKELETON_TOLERANCE_DEG
    assert _angle(_direction(joints, "left_ankle", "left_foot"), np.array([0, -0.45, 1])) < 15  # toes forward
    assert joints[J["left_hip"], 0] > 0 > joints[J["right_hip"], 0]


def test_deepmimic_knee_and_heading():
    # Right knee (column 20) at -90 degrees about the DeepMimic z axis bends the shin backwards.
    joints = smpl_skeleton(deepmimic_frames_to_smpl(_deepmimic_frame(i20=-np.pi / 2)[None]))[0]
    assert _angle(_direction(joints, "right_knee", "right_ankle"), np.array([0, 0, -1])) < SKELETON_TOLERANCE_DEG
    # Root yawed +90 degrees about the up axis: the body's left (+x at rest) swings to -z.
    turned = _deepmimic_frame(i4=np.cos(np.pi / 4), i6=np.sin(np.pi / 4))
    joints = smpl_skeleton(deepmimic_frames_to_smpl(turned[None]))[0]
    assert _angle(_direction(joints, "right_hip", "left_hip"), np.array([0, 0, -1])) < SKELETON_TOLERANCE_DEG


def test_deepmimic_walk_is_upright():
    walk = next(p for p in deepmimic_clip_paths() if p.stem.endswith("walk"))
    joints = smpl_skeleton(deepmimic_frames_to_smpl(read_deepmimic_clip(walk)))
    up = joints[:, J["head"], 1] - joints[:, J["left_ankle"], 1]
    assert np.all(up > 1.2)
