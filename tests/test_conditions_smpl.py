"""The ``smpl`` body backend, on a small synthetic model file in SMPL's own format (a cube at each
of the 24 joints, rigidly skinned to it), written by the test: SMPL's real files are never shipped."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from posedive.body.models import SMPLBody
from posedive.conditions.posebank import PoseBank
from posedive.errors import PathNotFound
from posedive.geometry.rotations import SMPL_JOINTS, SMPL_PARENTS, SMPL_REST_OFFSETS
from posedive.recipe import parse_recipe
from posedive.schema import ConditionRenderer, ConditionRequest

J = {name: i for i, name in enumerate(SMPL_JOINTS)}
CUBE = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
CUBE_FACES = np.array(
    [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
     [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]  # fmt: skip
)


def rest_joints() -> np.ndarray:
    joints = np.zeros((24, 3))
    for j, parent in enumerate(SMPL_PARENTS):
        if parent >= 0:
            joints[j] = joints[parent] + SMPL_REST_OFFSETS[j]
    return joints + np.array([0.0, 0.9, 0.0])


def write_smpl_model(folder: Path, gender: str = "NEUTRAL", half_size: float = 0.03) -> Path:
    """SMPL's pickle layout: v_template, f, J_regressor, weights, kintree_table, shapedirs, posedirs."""
    joints = rest_joints()
    vertices = np.concatenate([joint + half_size * CUBE for joint in joints])
    faces = np.concatenate([CUBE_FACES + 8 * j for j in range(24)])
    count = len(vertices)
    owner = np.repeat(np.arange(24), 8)
    weights = np.zeros((count, 24))
    weights[np.arange(count), owner] = 1.0
    regressor = weights.T / 8.0
    rng = np.random.default_rng(0)
    shapedirs = np.zeros((count, 3, 10))
    shapedirs[:, 1, 0] = 0.01 * (vertices[:, 1] - 0.9)  # beta 0: taller
    kintree = np.array([[4294967295] + list(SMPL_PARENTS[1:]), list(range(24))], dtype=np.int64)
    model = {
        "v_template": vertices,
        "f": faces.astype(np.uint32),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": kintree,
        "shapedirs": shapedirs,
        "posedirs": 1e-6 * rng.standard_normal((count, 3, 207)),
    }
    path = folder / f"SMPL_{gender}.pkl"
    path.write_bytes(pickle.dumps(model))
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("smpl")
    write_smpl_model(folder)
    return folder


def test_rest_pose_reproduces_the_template_joints(model_dir):
    body = SMPLBody(model_dir)
    out = body.forward(np.zeros((1, 72)))
    joints = rest_joints()
    assert np.allclose(out.joints[0], joints - joints[0], atol=1e-4)
    assert out.vertices.shape == (1, 24 * 8, 3) and out.faces.shape == (24 * 12, 3)
    # OpenPose-18 body joints come straight from SMPL's joints; the neck is the shoulders' midpoint.
    assert np.allclose(out.keypoints[0, 5], out.joints[0, J["left_shoulder"]])
    assert np.allclose(out.keypoints[0, 1], 0.5 * (out.joints[0, J["left_shoulder"]] + out.joints[0, J["right_shoulder"]]))


def test_pose_moves_the_right_joints(model_dir):
    body = SMPLBody(model_dir)
    pose = np.zeros((1, 72))
    pose[0, 3 * J["left_shoulder"] + 2] = np.pi / 2  # raise the left arm
    joints = body.forward(pose).joints[0]
    arm = joints[J["left_elbow"]] - joints[J["left_shoulder"]]
    assert np.dot(arm / np.linalg.norm(arm), [0.0, 1.0, 0.0]) > 0.99
    rest = body.forward(np.zeros((1, 72))).joints[0]
    assert np.allclose(joints[J["right_elbow"]], rest[J["right_elbow"]], atol=1e-5)


def test_missing_model_file_names_the_file(tmp_path):
    with pytest.raises(PathNotFound, match="SMPL_FEMALE.pkl"):
        SMPLBody(tmp_path, gender="female")


def test_smpl_recipe_renders_conditions(model_dir, tmp_path):
    from posedive.conditions import load_condition_renderer
    from posedive.geometry import cameras

    bank = PoseBank.from_arrays(np.zeros((1, 72)), ["rest"], ["test"], ["rest"], [0], ["test"])
    bank.save(tmp_path / "bank.npz")
    (tmp_path / "images").mkdir()
    recipe = parse_recipe(
        {
            "name": "smpl-test",
            "version": "1.0.0",
            "source": {"format": "folder", "root": "images"},
            "generator": {"weights": "none"},
            "poses": {"source": "bank.npz"},
            "body": {"model": "smpl", "smpl_model_dir": str(model_dir)},
        },
        base_dir=tmp_path,
    )
    with load_condition_renderer(recipe, cache_root=tmp_path / "cache") as renderer:
        assert isinstance(renderer, ConditionRenderer) and renderer.pose_ids() == ["rest"]
        conditions = renderer.render([ConditionRequest(pose_id="rest", elevation_deg=10.0, azimuth_deg=20.0)])[0]
        body = renderer.body.forward(np.zeros((1, 72)))
    assert conditions.body.model == "smpl" and len(conditions.body.shape) == 10
    # Every joint carries a cube, so every projected joint lands on rendered body pixels.
    mask = conditions.depth > 0
    for u, v, _ in cameras.project(body.joints[0], conditions.camera):
        assert mask[int(round(v)), int(round(u))]
