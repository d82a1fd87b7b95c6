"""Virtual cameras around the body (paper section 3.3).

Convention (as in ``posedive.schema``): OpenCV pinhole, world -> camera ``x_cam = R @ x_world + t``,
camera x right, y down, z forward; pixels ``(u, v, 1) ~ K @ x_cam``. World frame: metres, y up, the
body facing +z, +x on the body's left.

Viewpoint angles, in degrees:

* elevation ``alpha``: the camera's height angle above the body's centre (0 = level, 90 = overhead).
* azimuth ``gamma``: around the vertical axis, 0 = in front of the body (on +z), 90 = on the body's
  left (+x), 180 = behind, 270 = on its right. The camera centre is
  ``c = centre + d * (cos(alpha) sin(gamma), sin(alpha), cos(alpha) cos(gamma))``.

The camera always looks at the centre of the posed mesh's bounding box, image up following world
up, and stands at the distance where the whole mesh just fits the crop with a margin, as a
Re-ID detector crop would frame the person. Intrinsics come from the vertical field of view with
square pixels and the principal point at the image centre.
"""

from __future__ import annotations

import numpy as np

from ..schema import Camera

# Fraction of the half-width / half-height left free around the body.
DEFAULT_MARGIN = 0.06


def intrinsics(fov_deg: float, width: int, height: int) -> np.ndarray:
    """K for a vertical field of view, square pixels, principal point at the image centre."""
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
    focal = 0.5 * height / np.tan(np.radians(fov_deg) / 2.0)
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def look_at_rotation(elevation_deg: float, azimuth_deg: float) -> np.ndarray:
    """World -> camera rotation (rows: camera x, y, z axes in world) for a camera at the given angles
    looking at the centre, image up = world up. Exactly overhead, image up is the body's front."""
    alpha, gamma = np.radians(elevation_deg), np.radians(azimuth_deg)
    direction = np.array([np.cos(alpha) * np.sin(gamma), np.sin(alpha), np.cos(alpha) * np.cos(gamma)])
    forward = -direction  # from the camera to the centre
    up = np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:
        right = np.cross(forward, np.array([0.0, 0.0, 1.0 if forward[1] > 0 else -1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def fit_distance(points: np.ndarray, rotation: np.ndarray, K: np.ndarray, width: int, height: int, margin: float) -> float:
    """Smallest distance along the viewing axis at which every point projects inside the image.

    With the camera ``d`` metres from the centre, a point at ``(a, b, c)`` in camera axes relative to
    the centre projects to ``fx * a / (d + c)``; keeping that within the free half-width gives
    ``d >= fx * |a| / half_width - c`` (likewise for height); the answer is the largest bound.
    """
    local = points @ rotation.T
    half_w = (1.0 - margin) * width / 2.0
    half_h = (1.0 - margin) * height / 2.0
    bound_u = K[0, 0] * np.abs(local[:, 0]) / half_w - local[:, 2]
    bound_v = K[1, 1] * np.abs(local[:, 1]) / half_h - local[:, 2]
    nearest = float(np.max(local[:, 2] * -1.0)) + 0.05  # never inside the body
    return float(max(bound_u.max(), bound_v.max(), nearest))


def camera_for(
    vertices: np.ndarray,
    *,
    elevation_deg: float,
    azimuth_deg: float,
    fov_deg: float,
    width: int,
    height: int,
    margin: float = DEFAULT_MARGIN,
) -> Camera:
    """A camera at (elevation, azimuth) looking at the mesh's bounding-box centre and framing it."""
    vertices = np.asarray(vertices, dtype=np.float64)
    centre = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    K = intrinsics(fov_deg, width, height)
    R = look_at_rotation(elevation_deg, azimuth_deg)
    distance = fit_distance(vertices - centre, R, K, width, height, margin)
    position = centre - distance * R[2]
    t = -R @ position
    return Camera(
        elevation_deg=float(elevation_deg),
        azimuth_deg=float(azimuth_deg),
        distance_m=distance,
        fov_deg=float(fov_deg),
        width=int(width),
        height=int(height),
        K=K.tolist(),
        R=R.tolist(),
        t=t.tolist(),
    )


def project(points: np.ndarray, camera: Camera) -> np.ndarray:
    """(N, 3) world points -> (N, 3) pixel x, y and camera-frame depth z."""
    R, t, K = np.asarray(camera.R), np.asarray(camera.t), np.asarray(camera.K)
    cam = np.asarray(points, dtype=np.float64) @ R.T + t
    z = cam[:, 2:3]
    uv = (cam @ K.T)[:, :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)
    return np.concatenate([uv, z], axis=1)


def sample_viewpoints(
    count: int, elevation_range: tuple[float, float], azimuth_range: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """(count, 2) (elevation, azimuth) pairs drawn uniformly from the ranges (paper section 3.3)."""
    elevation = rng.uniform(elevation_range[0], elevation_range[1], size=count)
    azimuth = rng.uniform(azimuth_range[0], azimuth_range[1], size=count)
    return np.stack([elevation, azimuth], axis=1)
