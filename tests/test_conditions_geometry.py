"""Geometry of the rendered conditions: depth order, normal directions, skeleton placement and
left/right, on the real anny body through the real pyrender path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posedive.conditions.posebank import PoseBank
from posedive.conditions.render import OPENPOSE_COLOURS, decode_normal, vertex_normals
from posedive.conditions.renderer import BodyConditionRenderer, RendererSpec
from posedive.geometry import cameras
from posedive.schema import OPENPOSE18_KEYPOINTS, ConditionRequest

KP = {name: i for i, name in enumerate(OPENPOSE18_KEYPOINTS)}


def _pose(**joints: tuple[float, float, float]) -> np.ndarray:
    from posedive.geometry.rotations import SMPL_JOINTS

    pose = np.zeros(72)
    for name, value in joints.items():
        index = SMPL_JOINTS.index(name)
        pose[3 * index : 3 * index + 3] = value
    return pose


POSES = {
    "rest": _pose(),
    # Both arms straight forward (SMPL's T-pose arms swung onto +z).
    "arms_forward": _pose(left_shoulder=(0.0, -np.pi / 2, 0.0), right_shoulder=(0.0, np.pi / 2, 0.0)),
    # Left arm straight up, right arm down along the body.
    "left_arm_up": _pose(left_shoulder=(0.0, 0.0, np.pi / 2), right_shoulder=(0.0, 0.0, np.pi / 2.5)),
}


@pytest.fixture(scope="module")
def renderer(tmp_path_factory) -> BodyConditionRenderer:
    folder = tmp_path_factory.mktemp("geometry")
    names = sorted(POSES)
    bank = PoseBank.from_arrays(
        np.stack([POSES[n] for n in names]), names, ["test"] * 3, names, [0, 0, 0], ["test"] * 3
    )
    bank.save(folder / "bank.npz")
    spec = RendererSpec(bank_path=folder / "bank.npz", cache_root=None)
    with BodyConditionRenderer(spec) as r:
        yield r


def _render(renderer, pose_id: str, azimuth: float, elevation: float = 0.0):
    """The condition set plus the raw metric depth and the posed body it came from."""
    request = ConditionRequest(pose_id=pose_id, elevation_deg=elevation, azimuth_deg=azimuth)
    body = renderer.body.forward(renderer.bank.pose(pose_id)[None])
    conditions = renderer.render_body(
        body.vertices[0], body.faces, body.keypoints[0], request, "test", renderer.bank.pose(pose_id)
    )
    raw = renderer.rasterizer.render(body.vertices[0], body.faces, conditions.camera)
    return conditions, raw, body


def _pixel(point_xy: np.ndarray) -> tuple[int, int]:
    return int(round(point_xy[1])), int(round(point_xy[0]))  # (row, column)


def test_depth_increases_away_from_camera(renderer):
    front, raw_front, body = _render(renderer, "arms_forward", 0.0)
    back, raw_back, _ = _render(renderer, "arms_forward", 180.0)
    wrist, neck = KP["left_wrist"], KP["neck"]
    for conditions, raw, hands_nearer in ((front, raw_front, True), (back, raw_back, False)):
        hand_px = _pixel(conditions.keypoints_2d[wrist])
        chest_xy = conditions.keypoints_2d[neck, :2] + np.array([0.0, 0.25]) * (
            conditions.keypoints_2d[KP["left_hip"], :2] - conditions.keypoints_2d[neck, :2]
        )
        chest_px = _pixel(chest_xy)
        assert raw.depth_m[hand_px] > 0 and raw.depth_m[chest_px] > 0
        # Metric depth: the hands stretched towards the camera are nearer than the chest, and vice versa.
        assert (raw.depth_m[hand_px] < raw.depth_m[chest_px] - 0.2) == hands_nearer
        # The encoded map is bright where near, so its order is the reverse of metric depth.
        assert (int(conditions.depth[hand_px]) > int(conditions.depth[chest_px])) == hands_nearer
        # Everywhere: larger metric depth never gets a larger encoded value.
        mask = raw.depth_m > 0
        order = np.argsort(raw.depth_m[mask])
        assert np.all(np.diff(conditions.depth[mask][order].astype(int)) <= 0)
        assert np.array_equal(conditions.depth > 0, mask)
        # The metric depth at the body is about the camera distance.
        assert abs(float(np.median(raw.depth_m[mask])) - conditions.camera.distance_m) < 0.5


def _chest_vertices(body) -> np.ndarray:
    """Front torso vertices around the sternum, found from the body's own joints."""
    vertices = body.vertices[0]
    keypoints = body.keypoints[0]
    hips = 0.5 * (keypoints[KP["left_hip"]] + keypoints[KP["right_hip"]])
    sternum = keypoints[KP["neck"]] + 0.3 * (hips - keypoints[KP["neck"]])
    near = (np.abs(vertices[:, 0] - sternum[0]) < 0.04) & (np.abs(vertices[:, 1] - sternum[1]) < 0.04)
    candidates = np.flatnonzero(near)
    return candidates[vertices[candidates, 2] > vertices[candidates, 2].max() - 0.01]


def test_chest_normals_face_camera_at_front_and_away_at_back(renderer):
    for azimuth, facing in ((0.0, True), (180.0, False)):
        conditions, raw, body = _render(renderer, "rest", azimuth)
        chest = _chest_vertices(body)
        assert len(chest) > 0
        R = np.asarray(conditions.camera.R)
        normals_cv = vertex_normals(body.vertices[0], body.faces)[chest] @ R.T
        # OpenCV camera z looks away from the viewer: a normal facing the camera has z < 0.
        toward_camera = -normals_cv[:, 2]
        assert np.all(toward_camera > 0.7) if facing else np.all(toward_camera < -0.7)
        pixel = _pixel(cameras.project(body.vertices[0][chest], conditions.camera)[:, :2].mean(axis=0))
        rendered = decode_normal(conditions.normal[pixel])
        # The rendered surface at the chest's pixel faces the viewer: the chest itself at azimuth 0,
        # the back (which hides the chest) at 180.
        assert rendered[2] > 0.7
        chest_depth = float(cameras.project(body.vertices[0][chest], conditions.camera)[:, 2].mean())
        if facing:
            assert abs(raw.depth_m[pixel] - chest_depth) < 0.03
        else:
            assert raw.depth_m[pixel] < chest_depth - 0.1


def test_skeleton_joints_land_on_projected_joints(renderer):
    conditions, raw, body = _render(renderer, "arms_forward", 30.0, elevation=20.0)
    projected = cameras.project(body.keypoints[0], conditions.camera)
    assert np.allclose(conditions.keypoints_2d[:, :2], projected[:, :2], atol=1e-3)
    limbs = ["right_shoulder", "right_elbow", "left_shoulder", "left_hip", "right_knee", "left_ankle", "right_wrist"]
    for name in limbs:
        index = KP[name]
        row, col = _pixel(conditions.keypoints_2d[index])
        patch = conditions.skeleton[max(0, row - 1) : row + 2, max(0, col - 1) : col + 2].reshape(-1, 3)
        distance = np.abs(patch.astype(int) - np.array(OPENPOSE_COLOURS[index])).max(axis=1)
        assert distance.min() <= 8, name  # the joint's own OpenPose colour is drawn there
        # Body joints lie inside the body's silhouette (or within a few pixels of it).
        window = raw.mask[max(0, row - 3) : row + 4, max(0, col - 3) : col + 4]
        assert window.any(), name
    assert conditions.skeleton.shape == (384, 192, 3) and conditions.skeleton.dtype == np.uint8


def test_raised_left_arm_is_on_image_right_when_facing_the_camera(renderer):
    front, raw, _ = _render(renderer, "left_arm_up", 0.0)
    width = front.camera.width
    wrist = front.keypoints_2d[KP["left_wrist"]]
    nose = front.keypoints_2d[KP["nose"]]
    assert wrist[0] > width / 2 and wrist[1] < nose[1]
    above_head = raw.mask[: int(nose[1]) - 20]
    columns = np.flatnonzero(above_head.any(axis=0))
    assert len(columns) and columns.min() > width / 2
    back, raw_back, _ = _render(renderer, "left_arm_up", 180.0)
    assert back.keypoints_2d[KP["left_wrist"], 0] < width / 2


def test_body_fills_a_reid_crop(renderer):
    conditions, raw, _ = _render(renderer, "rest", 45.0, elevation=15.0)
    rows = np.flatnonzero(raw.mask.any(axis=1))
    columns = np.flatnonzero(raw.mask.any(axis=0))
    height, width = raw.mask.shape
    # Inside the image, and as close as the margin allows on the tightest side: the camera looks at the
    # body's centre and comes as near as the whole body permits.
    gaps = [rows.min() / (height / 2), (height - 1 - rows.max()) / (height / 2)]
    gaps += [columns.min() / (width / 2), (width - 1 - columns.max()) / (width / 2)]
    assert min(gaps) > 0
    assert min(gaps) <= cameras.DEFAULT_MARGIN + 0.03


def test_rendering_is_deterministic(renderer):
    request = ConditionRequest(pose_id="arms_forward", elevation_deg=12.5, azimuth_deg=211.0)
    first, second = renderer.render([request])[0], renderer.render([request])[0]
    assert first.condition_id == second.condition_id
    for name in ("depth", "normal", "skeleton", "keypoints_2d"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    assert first.camera == second.camera


def test_cache_renders_each_condition_once(renderer, tmp_path: Path):
    spec = RendererSpec(bank_path=renderer.spec.bank_path, cache_root=tmp_path)
    cached = BodyConditionRenderer(spec, bank=renderer.bank)
    cached._body, cached._rasterizer = renderer.body, renderer.rasterizer  # reuse this module's GL context
    request = ConditionRequest(pose_id="rest", elevation_deg=5.0, azimuth_deg=100.0)
    first = cached.render([request])[0]
    path = cached.cache.path(first.condition_id)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    again = cached.render([request, request])
    assert path.stat().st_mtime_ns == stamp
    assert all(np.array_equal(c.normal, first.normal) and c.camera == first.camera for c in again)
    other = cached.render([ConditionRequest(pose_id="rest", elevation_deg=5.0, azimuth_deg=101.0)])[0]
    assert other.condition_id != first.condition_id
    path.write_bytes(b"truncated")  # a damaged entry is rendered again, not trusted
    repaired = cached.render([request])[0]
    assert np.array_equal(repaired.depth, first.depth) and cached.cache.get(first.condition_id) is not None
