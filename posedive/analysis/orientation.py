"""Body orientation relative to the camera: its convention, its estimate from BlazePose's 3D world
landmarks, and the sectors and 30-degree bins that statistics and plots summarise it with.

Convention (the same as posedive's virtual cameras, where a camera at azimuth 0 sees the body's front):
the azimuth is the direction of the camera around the body's vertical axis, in degrees in [0, 360),
measured from the body's front towards its left side:

* 0: the person faces the camera;
* 90: the camera sees the body's left side (the person faces the image's left);
* 180: the person has their back to the camera;
* 270: the camera sees the body's right side (the person faces the image's right).

BlazePose's world landmarks are in metres with the origin between the hips and camera-aligned axes
(x towards the image's right, y down, z away from the camera). The body's left direction is the sum
of the right-to-left shoulder and right-to-left hip vectors, projected on the horizontal (x, z) plane;
the body's front is that direction turned by 90 degrees about the vertical axis. Using shoulders and
hips together steadies the estimate when the upper body twists.

Limitation measured on low-resolution pedestrian crops: BlazePose sometimes mistakes a back view for
a front view (it still reports a visible nose), which flips the azimuth by about 180 degrees; treat
per-image azimuths as noisy and look at distributions.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..pose.keypoints import BLAZEPOSE33_KEYPOINTS

_LEFT_SHOULDER = BLAZEPOSE33_KEYPOINTS.index("left_shoulder")
_RIGHT_SHOULDER = BLAZEPOSE33_KEYPOINTS.index("right_shoulder")
_LEFT_HIP = BLAZEPOSE33_KEYPOINTS.index("left_hip")
_RIGHT_HIP = BLAZEPOSE33_KEYPOINTS.index("right_hip")

# Sectors used in summaries; each is centred on its azimuth and 90 degrees wide.
SECTORS: dict[str, float] = {"front": 0.0, "left": 90.0, "back": 180.0, "right": 270.0}
AZIMUTH_BINS = 12  # 30-degree bins, centred on multiples of 30 (0 = facing the camera)


def estimate_body_azimuth(world_landmarks: np.ndarray) -> float:
    """Azimuth in degrees [0, 360) of the camera around the body (0 = facing the camera, 180 = back
    to the camera, 90 = left side visible), from (33, 3) BlazePose world landmarks.

    Raises ValueError on a wrong shape, non-finite values, or a body seen exactly from above or below
    (no horizontal left-right direction to measure).
    """
    world = np.asarray(world_landmarks, dtype=np.float64)
    if world.ndim != 2 or world.shape[0] != len(BLAZEPOSE33_KEYPOINTS) or world.shape[1] < 3:
        raise ValueError(f"expected (33, 3) BlazePose world landmarks, got shape {world.shape}")
    if not np.all(np.isfinite(world[:, :3])):
        raise ValueError("world landmarks contain non-finite values")
    left = (world[_LEFT_SHOULDER, :3] - world[_RIGHT_SHOULDER, :3]) + (world[_LEFT_HIP, :3] - world[_RIGHT_HIP, :3])
    lx, lz = float(left[0]), float(left[2])
    if math.hypot(lx, lz) < 1e-6:
        raise ValueError("shoulders and hips have no horizontal extent; the azimuth is undefined")
    # Camera direction from the body is -z. In the body frame, its component along the body's left
    # (lx, lz) is -lz and along the body's front (lz, -lx) is lx.
    return math.degrees(math.atan2(-lz, lx)) % 360.0


def azimuth_sector(azimuth_deg: float) -> str:
    """The 90-degree sector (front, left, back, right) an azimuth falls in."""
    azimuth = azimuth_deg % 360.0
    return min(SECTORS, key=lambda name: abs((azimuth - SECTORS[name] + 180.0) % 360.0 - 180.0))


def angular_difference(a_deg: float, b_deg: float) -> float:
    """Smallest absolute difference between two angles, in degrees [0, 180]."""
    return abs((a_deg - b_deg + 180.0) % 360.0 - 180.0)


def azimuth_histogram(azimuths: Sequence[float]) -> list[int]:
    """Counts in 12 bins of 30 degrees, bin i centred on 30 * i (so 'facing the camera' is one bin)."""
    width = 360.0 / AZIMUTH_BINS
    counts = np.zeros(AZIMUTH_BINS, dtype=int)
    for azimuth in azimuths:
        counts[int(((azimuth + width / 2) % 360.0) // width)] += 1
    return counts.tolist()
