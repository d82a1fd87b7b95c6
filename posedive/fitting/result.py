"""What a fit returns per image (and what ``posedive fit`` writes as JSON lines).

Conventions are the conditions stage's: the world is the body's own upright frame (y up, facing +z,
pelvis at the origin), so ``pose[:3]`` is zero and the body's orientation relative to the camera lives
in the camera: ``R`` (world -> camera) and ``t``. The viewpoint angles follow
``posedive.geometry.cameras``: azimuth 0 = the camera in front of the person (walking towards it),
180 = behind (walking away), 90 = on the person's left; elevation = the camera's height angle.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..schema import Camera


class FitResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="body model whose skeleton was fitted (anny, smpl)")
    pose: list[float] = Field(min_length=72, max_length=72, description="SMPL-24 axis-angle, world = body frame")
    orientation: list[float] = Field(min_length=3, max_length=3, description="axis-angle body -> camera (= camera R)")
    camera: Camera
    error_2d_px: float = Field(description="mean reprojection error over visible landmarks (pixels)")
    error_3d_mm: float = Field(description="mean hip-centred 3D landmark error over visible landmarks (mm)")
    visible: int = Field(description="landmarks with visibility >= 0.5")
    success: bool
    reason: str | None = Field(None, description="why the fit was rejected")


def viewpoint(rotation: np.ndarray, translation: np.ndarray) -> tuple[float, float, float]:
    """Camera (elevation, azimuth, distance) around the pelvis from world -> camera ``R``, ``t``."""
    centre = -np.asarray(rotation).T @ np.asarray(translation)
    distance = float(np.linalg.norm(centre))
    elevation = float(np.degrees(np.arcsin(np.clip(centre[1] / max(distance, 1e-9), -1.0, 1.0))))
    azimuth = float(np.degrees(np.arctan2(centre[0], centre[2])) % 360.0)
    return elevation, azimuth, distance


def camera_from_fit(rotation: np.ndarray, translation: np.ndarray, K: np.ndarray, fov_deg: float, width: int, height: int) -> Camera:
    elevation, azimuth, distance = viewpoint(rotation, translation)
    return Camera(
        elevation_deg=elevation,
        azimuth_deg=azimuth,
        distance_m=distance,
        fov_deg=float(fov_deg),
        width=int(width),
        height=int(height),
        K=np.asarray(K, dtype=float).tolist(),
        R=np.asarray(rotation, dtype=float).tolist(),
        t=np.asarray(translation, dtype=float).tolist(),
    )


def azimuth_difference(a: float, b: float) -> float:
    """Absolute angular difference of two azimuths in degrees, in [0, 180]."""
    d = abs((a - b) % 360.0)
    return min(d, 360.0 - d)
