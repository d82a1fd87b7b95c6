"""The built-in pedestrian bank: DeepMimic's clips plus standing and walking variations of its walk."""

from __future__ import annotations

import numpy as np
import pytest

from posedive.conditions import posebank as pb
from posedive.conditions.posebank.variations import ARMS, arm_rotations, build_variations
from posedive.geometry.rotations import SMPL_JOINTS, matrix_to_axis_angle, pose_to_local_matrices, smpl_skeleton
from posedive.recipe import parse_recipe

J = {name: i for i, name in enumerate(SMPL_JOINTS)}


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSEDIVE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield pb.load_builtin_bank("pedestrian"), pb.load_builtin_bank("deepmimic"), pb.builtin_bank_path("pedestrian")


@pytest.fixture(scope="module")
def variations():
    return build_variations()


def test_pedestrian_bank_is_deepmimic_plus_variations(banks, variations):
    pedestrian, deepmimic, path = banks
    assert path.name == "pedestrian-v1.npz" and pb.builtin_bank_path("deepmimic").name == "deepmimic-v2.npz"
    for pose_id in deepmimic.ids[::25]:
        assert np.array_equal(pedestrian.pose(pose_id), deepmimic.pose(pose_id))
    assert len(pedestrian) == len(deepmimic) + 2 * len(variations)
    assert all(pose_id.startswith("deepmimic-") for pose_id in pedestrian.ids)
    assert {f"{i}-mirror" for i in variations.ids} <= set(pedestrian.ids.tolist())


def test_variations_are_upright_tagged_and_within_joint_limits(variations):
    tags = variations.tag_lists()
    assert all("upright" in t and ("stand" in t or "walk" in t) for t in tags)
    assert sum("carry" in t for t in tags) > 100 and sum("head_turn" in t for t in tags) > 100
    local = matrix_to_axis_angle(pose_to_local_matrices(variations.poses.astype(np.float64)))
    for side in ("left", "right"):
        elbow = np.degrees(np.linalg.norm(local[:, J[f"{side}_elbow"]], axis=1))
        assert elbow.max() <= 150
    for joint in ("neck", "head"):
        assert np.degrees(np.abs(local[:, J[joint], 1])).max() <= 30 + 8  # the captured neck turns a little too
    knees = local[:, [J["left_knee"], J["right_knee"]], 0]
    assert (knees > -0.05).all()  # knees bend forward only


def test_arm_postures_put_the_hand_where_they_say():
    """The two-bone solve: the posed left hand lands on the posture's hand point, within the 3 cm by
    which the rest skeleton's arm bones stray from the straight line the solve assumes."""
    for name, posture in ARMS.items():
        shoulder, elbow = arm_rotations(np.array(posture.hand), np.array(posture.elbow))
        pose = np.zeros((1, 24, 3))
        pose[0, J["left_shoulder"]] = matrix_to_axis_angle(shoulder)
        pose[0, J["left_elbow"]] = matrix_to_axis_angle(elbow)
        joints = smpl_skeleton(pose.reshape(1, 72))[0]
        reached = joints[J["left_wrist"]] - joints[J["left_shoulder"]]
        assert np.linalg.norm(reached - posture.hand) < 0.03, name
        assert np.allclose(elbow[1], [0, 1, 0]) and np.allclose(elbow[:, 1], [0, 1, 0])  # a hinge about y


def test_busy_hands_are_where_a_phone_or_a_box_would_be(variations):
    joints = dict(zip(variations.ids.tolist(), smpl_skeleton(variations.poses.astype(np.float64))))
    call = joints["deepmimic-stand-00000-straight-call-ahead"]
    assert np.linalg.norm(call[J["left_wrist"]] - call[J["head"]]) < 0.15
    phone = joints["deepmimic-walk_hands-00010-phone-ahead"]
    assert phone[J["left_wrist"], 2] - phone[J["spine3"], 2] > 0.2  # held in front of the chest
    box = joints["deepmimic-stand-00020-wide-box-look_right30"]
    assert min(box[J["left_wrist"], 2], box[J["right_wrist"], 2]) - box[J["spine3"], 2] > 0.2


def test_the_default_upright_set_is_more_than_walk_and_run_cycles(banks):
    pedestrian, _, _ = banks
    recipe = parse_recipe({"name": "d", "version": "1.0.0", "source": {"format": "folder", "root": "x"},
                           "generator": {"weights": "x"}})
    summary = pb.selection_summary(pedestrian, recipe.poses)
    assert summary.tags["stand"].kept >= 400 and summary.tags["walk"].kept >= 300
    assert summary.tags["acrobatics"].kept == summary.tags["floor"].kept == 0
    walk_run_clips = sum(1 for clip, kept in zip(pedestrian.clip, pb.selection_mask(pedestrian, recipe.poses))
                         if kept and clip in ("walk", "run"))
    assert walk_run_clips < 0.1 * summary.kept
