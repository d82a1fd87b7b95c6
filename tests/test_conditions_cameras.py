"""Camera placement and projection (OpenCV world -> camera, y up world, body facing +z)."""

from __future__ import annotations

import numpy as np
import pytest

from posedive.geometry.cameras import camera_for, intrinsics, look_at_rotation, project


def _centre(camera) -> np.ndarray:
    R, t = np.asarray(camera.R), np.asarray(camera.t)
    return -R.T @ t


@pytest.mark.parametrize("elevation,azimuth", [(0, 0), (0, 90), (30, 180), (15, 270), (89, 45), (-20, 10)])
def test_camera_stands_at_the_requested_angles_and_looks_at_the_centre(elevation, azimuth):
    rng = np.random.default_rng(0)
    points = rng.uniform([-0.3, -0.9, -0.2], [0.3, 0.8, 0.2], size=(500, 3)) + np.array([0.1, 0.2, -0.1])
    camera = camera_for(points, elevation_deg=elevation, azimuth_deg=azimuth, fov_deg=30, width=192, height=384)
    R = np.asarray(camera.R)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1.0)
    centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
    offset = _centre(camera) - centre
    assert np.isclose(np.linalg.norm(offset), camera.distance_m)
    a, g = np.radians(elevation), np.radians(azimuth)
    expected = np.array([np.cos(a) * np.sin(g), np.sin(a), np.cos(a) * np.cos(g)])
    assert np.allclose(offset / np.linalg.norm(offset), expected, atol=1e-9)
    # The body's centre projects to the image centre; every point lands inside the image.
    u, v, z = project(centre[None], camera)[0]
    assert np.isclose(u, 96) and np.isclose(v, 192) and z > 0
    uv = project(points, camera)
    assert np.all((uv[:, 0] > 0) & (uv[:, 0] < 192) & (uv[:, 1] > 0) & (uv[:, 1] < 384) & (uv[:, 2] > 0))


def test_image_axes_follow_the_world():
    # In front (azimuth 0): image right is the body's left (+x), image down is world down.
    R = look_at_rotation(0, 0)
    assert np.allclose(R[0], [1, 0, 0]) and np.allclose(R[1], [0, -1, 0]) and np.allclose(R[2], [0, 0, -1])
    # From the body's left (azimuth 90) the camera looks along -x and the body's front is image left.
    R = look_at_rotation(0, 90)
    assert np.allclose(R[2], [-1, 0, 0]) and np.allclose(R[0], [0, 0, -1])


def test_intrinsics_from_vertical_fov():
    K = intrinsics(30.0, 192, 384)
    assert np.isclose(2 * np.degrees(np.arctan(192 / K[1, 1])), 30.0)
    assert K[0, 0] == K[1, 1] and (K[0, 2], K[1, 2]) == (96.0, 192.0)
    with pytest.raises(ValueError, match="fov_deg"):
        intrinsics(0.0, 192, 384)


def test_closer_framing_for_smaller_bodies():
    body = np.random.default_rng(1).uniform(-0.5, 0.5, size=(200, 3)) * np.array([0.4, 1.7, 0.3])
    far = camera_for(body, elevation_deg=10, azimuth_deg=30, fov_deg=30, width=192, height=384)
    near = camera_for(0.5 * body, elevation_deg=10, azimuth_deg=30, fov_deg=30, width=192, height=384)
    assert near.distance_m < 0.6 * far.distance_m
