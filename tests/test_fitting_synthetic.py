"""Synthetic round trip: a body posed and projected by posedive itself is recovered by the fitter."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posedive.fitting import FitConfig, Observation, Skeleton, azimuth_difference, fit_observations
from posedive.fitting.fitter import FREE_JOINTS
from posedive.fitting.skeleton import FIT_POINTS
from posedive.geometry.cameras import camera_for, project
from posedive.geometry.rotations import SMPL_JOINTS
from posedive.schema import OPENPOSE18_KEYPOINTS

J = {name: i for i, name in enumerate(SMPL_JOINTS)}
WIDTH, HEIGHT = 96, 192
# Where the tolerances come from: on these six views the fit recovers azimuth within 8 degrees,
# elevation within 3, the free joints within 9-10 degrees on average (the worst joint is a shoulder:
# an arm's twist about its own axis is barely visible from its end points).
AZIMUTH_TOL, ELEVATION_TOL, MEAN_JOINT_TOL, LIMB_TOL = 15.0, 6.0, 13.0, 25.0


@pytest.fixture(scope="module")
def body():
    from posedive.body.models import AnnyBody

    return AnnyBody()


def walking_pose(phase: float) -> np.ndarray:
    pose = np.zeros((24, 3))
    pose[J["left_hip"]] = [-0.45 * phase, 0.0, 0.05]
    pose[J["right_hip"]] = [0.4 * phase, 0.0, -0.05]
    pose[J["left_knee"]] = [0.25 + 0.2 * (phase > 0), 0.0, 0.0]
    pose[J["right_knee"]] = [0.25 + 0.3 * (phase < 0), 0.0, 0.0]
    pose[J["left_shoulder"]] = [0.3 * phase, 0.0, -1.2]
    pose[J["right_shoulder"]] = [-0.3 * phase, 0.0, 1.2]
    pose[J["left_elbow"]] = [0.0, -0.5, 0.0]
    pose[J["right_elbow"]] = [0.0, 0.35, 0.0]
    pose[J["spine1"]] = [0.1, 0.1 * phase, 0.0]
    pose[J["head"]] = [0.1, -0.2, 0.0]
    return pose.reshape(-1)


def observe_synthetic(body, pose: np.ndarray, elevation: float, azimuth: float) -> Observation:
    """What a perfect pose estimator would report: projected keypoints and hip-centred camera-axis 3D."""
    out = body.forward(pose[None])
    camera = camera_for(out.vertices[0], elevation_deg=elevation, azimuth_deg=azimuth, fov_deg=30.0, width=WIDTH, height=HEIGHT)
    points = {name: out.keypoints[0][OPENPOSE18_KEYPOINTS.index(name)] for name in OPENPOSE18_KEYPOINTS}
    points["left_foot_index"] = out.joints[0][J["left_foot"]]
    points["right_foot_index"] = out.joints[0][J["right_foot"]]
    world = np.stack([points[name] for name in FIT_POINTS]).astype(np.float64)
    pixels = project(world, camera)[:, :2]
    in_camera = world @ np.asarray(camera.R).T
    hips = in_camera[[FIT_POINTS.index("left_hip"), FIT_POINTS.index("right_hip")]].mean(0)
    keypoints = np.concatenate([pixels, np.ones((len(world), 1))], axis=1)
    return Observation(keypoints.astype(np.float32), (in_camera - hips).astype(np.float32), WIDTH, HEIGHT)


def joint_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees((Rotation.from_rotvec(a).inv() * Rotation.from_rotvec(b)).magnitude()))


def test_round_trip_recovers_viewpoint_and_pose(body):
    views = [(10, 0), (20, 60), (15, 150), (25, 200), (5, 290), (30, 330)]
    truths = [walking_pose(1.0 if k % 2 else -1.0) for k in range(len(views))]
    observations = [observe_synthetic(body, pose, el, az) for pose, (el, az) in zip(truths, views)]
    fits = fit_observations(observations, Skeleton.from_body(body), FitConfig(threads=1))
    for fit, truth, (elevation, azimuth) in zip(fits, truths, views):
        assert fit.success, fit.reason
        assert fit.error_2d_px < 2.0 and fit.error_3d_mm < 30.0
        assert azimuth_difference(fit.camera.azimuth_deg, azimuth) < AZIMUTH_TOL
        assert abs(fit.camera.elevation_deg - elevation) < ELEVATION_TOL
        fitted = np.asarray(fit.pose).reshape(24, 3)
        errors = {n: joint_error_deg(fitted[J[n]], truth.reshape(24, 3)[J[n]]) for n in FREE_JOINTS}
        assert np.mean(list(errors.values())) < MEAN_JOINT_TOL, errors
        for limb in ("left_hip", "right_hip", "left_knee", "right_knee", "left_elbow", "right_elbow"):
            assert errors[limb] < LIMB_TOL, (limb, errors[limb])
    # The fit's pose and camera, in the conditions stage's conventions, put the body model's own
    # keypoints back on the observed pixels: what the renderer relies on to draw aligned maps.
    posed = body.forward(np.array([f.pose for f in fits]))
    for index, (fit, observation) in enumerate(zip(fits, observations)):
        drawn = project(posed.keypoints[index], fit.camera)[:, :2]
        seen = np.stack([observation.keypoints[FIT_POINTS.index(n), :2] for n in OPENPOSE18_KEYPOINTS if n != "neck"])
        mine = np.stack([drawn[OPENPOSE18_KEYPOINTS.index(n)] for n in OPENPOSE18_KEYPOINTS if n != "neck"])
        assert np.linalg.norm(mine - seen, axis=1).mean() < 3.0


def test_missing_or_sparse_observations_are_rejected_with_a_reason(body):
    skeleton = Skeleton.from_body(body)
    empty = Observation.empty(WIDTH, HEIGHT)
    sparse = observe_synthetic(body, walking_pose(1.0), 10, 0)
    keypoints = sparse.keypoints.copy()
    keypoints[5:, 2] = 0.0  # only the face is visible
    sparse = Observation(keypoints, sparse.world, WIDTH, HEIGHT)
    fits = fit_observations([empty, sparse], skeleton, FitConfig(threads=1, iterations=20, camera_iterations=5))
    assert not fits[0].success and "no person" in fits[0].reason
    assert not fits[1].success and "landmarks visible" in fits[1].reason


def test_sequence_smoothing_keeps_neighbouring_frames_close(body):
    skeleton = Skeleton.from_body(body)
    rng = np.random.default_rng(0)
    frames = [observe_synthetic(body, walking_pose(np.sin(k / 3)), 15, 40 + 2 * k) for k in range(6)]
    noisy = []
    for obs in frames:
        keypoints = obs.keypoints.copy()
        keypoints[:, :2] += rng.normal(0, 2.0, keypoints[:, :2].shape)
        noisy.append(Observation(keypoints, obs.world + rng.normal(0, 0.03, obs.world.shape).astype(np.float32), WIDTH, HEIGHT))
    loose = fit_observations(noisy, skeleton, FitConfig(threads=1, weight_smooth=0.0), sequence=True)
    smooth = fit_observations(noisy, skeleton, FitConfig(threads=1, weight_smooth=5.0), sequence=True)

    def jitter(fits):
        poses = np.array([f.pose for f in fits])
        return float(np.abs(np.diff(poses, axis=0)).mean())

    assert jitter(smooth) < jitter(loose)
