"""Fit SMPL-24 pose, body orientation and camera to BlazePose observations, batched in PyTorch.

Model: the body model's rest skeleton (``Skeleton``) posed by forward kinematics; the body's
orientation ``R`` maps the body frame (y up, facing +z, pelvis at 0) into the camera frame (OpenCV
axes) and ``t`` is the pelvis in camera coordinates; pixels come from a pinhole camera with the
conditions stage's field of view and the principal point at the image centre. Minimised, per image:

* 3D term: hip-centred model points, rotated into camera axes, against BlazePose's world landmarks
  (metres, hip-centred, camera axes), weighted by visibility;
* 2D term: reprojected points against the image landmarks, weighted by visibility, in units of the
  image height scaled to a ~1.7 m person (so it weighs like the 3D term);
* pose prior: a small L2 pull to the rest pose and joint limits (knees and elbows bend one way and
  barely twist); joints BlazePose cannot see (feet, wrists, hands) stay at rest;
* temporal smoothness (sequences only): consecutive frames' pose, orientation and translation.

Two stages: orientation and translation first (from a closed-form start: Kabsch on the torso's world
landmarks, then linear least squares for ``t``), then everything. All images of a batch are
optimised together, each with its own variables, so a batch costs little more than one image.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..geometry.cameras import intrinsics
from ..geometry.rotations import SMPL_JOINTS
from .landmarks import Observation
from .result import FitResult, camera_from_fit
from .skeleton import FIT_POINTS, Skeleton, axis_angle_matrices, pose_points

logger = logging.getLogger(__name__)

# Joints the observations constrain; the rest stay at the rest pose.
FREE_JOINTS: tuple[str, ...] = (
    "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "spine3", "neck",
    "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
)  # fmt: skip
TORSO: tuple[str, ...] = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
PERSON_HEIGHT_M = 1.7


class FitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fov_deg: float = Field(30.0, gt=1, lt=120, description="vertical field of view of the fitted camera")
    camera_iterations: int = Field(80, ge=0, description="Adam steps on orientation and translation only")
    iterations: int = Field(300, ge=0, description="Adam steps on everything")
    learning_rate: float = Field(0.03, gt=0)
    weight_3d: float = Field(1.0, ge=0)
    weight_2d: float = Field(1.0, ge=0)
    weight_pose: float = Field(0.0005, ge=0, description="L2 pull of the free joints to the rest pose")
    weight_limits: float = Field(1.0, ge=0, description="joint-limit hinge penalty")
    weight_smooth: float = Field(0.05, ge=0, description="temporal smoothness between consecutive frames")
    threads: int | None = Field(
        1,
        ge=1,
        description=(
            "torch CPU threads while fitting (restored after; None keeps torch's setting). The tensors are "
            "tiny, so more threads only add contention: on a shared 2-core machine 2 threads ran 50x slower"
        ),
    )
    min_visible: int = Field(8, ge=1, description="fewest landmarks with visibility >= 0.5 for a fit")
    max_error_2d: float = Field(0.05, gt=0, description="largest accepted mean reprojection error, fraction of image height")
    max_error_3d_mm: float = Field(120.0, gt=0, description="largest accepted mean 3D landmark error (mm)")


def _kabsch(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rotation R minimising sum w |R s - t|^2 for centred point sets."""
    w = weights[:, None]
    s = source - (w * source).sum(0) / max(w.sum(), 1e-9)
    t = target - (w * target).sum(0) / max(w.sum(), 1e-9)
    u, _, vt = np.linalg.svd((w * t).T @ s)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _axis_angle(matrix: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(matrix).as_rotvec()


def _initial_translation(points: np.ndarray, keypoints: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Linear least squares for t: (u - cx)(z + tz) = fx (x + tx), same for v, visibility-weighted."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    rows, rhs = [], []
    for (x, y, z), (u, v, w) in zip(points, keypoints):
        if w < 0.3:
            continue
        rows += [w * np.array([fx, 0.0, -(u - cx)]), w * np.array([0.0, fy, -(v - cy)])]
        rhs += [w * ((u - cx) * z - fx * x), w * ((v - cy) * z - fy * y)]
    if len(rows) < 3:
        return np.array([0.0, 0.0, 10.0])
    t, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    if t[2] + points[:, 2].min() <= 0.1:
        t[2] = 10.0
    return t


def fit_observations(
    observations: Sequence[Observation],
    skeleton: Skeleton,
    config: FitConfig | None = None,
    *,
    sequence: bool = False,
    device: str = "cpu",
) -> list[FitResult]:
    """Fit every observation (batched). ``sequence=True`` treats them as consecutive video frames."""
    import torch

    config = config or FitConfig()
    if not observations:
        return []
    threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _fit(observations, skeleton, config, sequence, device)
    finally:
        torch.set_num_threads(threads)


def _fit(observations: Sequence[Observation], skeleton: Skeleton, config: FitConfig, sequence: bool, device: str) -> list[FitResult]:
    import torch

    batch = len(observations)
    dtype = torch.float64
    bones, offsets, attach = skeleton.torch_parts(dtype, device)
    index = {name: i for i, name in enumerate(FIT_POINTS)}
    hips = [index["left_hip"], index["right_hip"]]
    torso = [index[name] for name in TORSO]

    keypoints = np.stack([o.keypoints for o in observations]).astype(np.float64)  # (B, P, 3)
    has_world = np.array([o.world is not None for o in observations])
    world = np.stack([o.world if o.world is not None else np.zeros((len(FIT_POINTS), 3)) for o in observations]).astype(np.float64)
    Ks = np.stack([intrinsics(config.fov_deg, o.width, o.height) for o in observations])
    heights = np.array([o.height for o in observations], dtype=np.float64)
    visible = keypoints[:, :, 2]
    usable = (visible >= 0.5).sum(1) >= config.min_visible

    # Closed-form start: torso orientation from the world landmarks (or a frontal guess), then t.
    rest = skeleton.points - skeleton.points[hips].mean(0)
    init_r, init_t = np.zeros((batch, 3)), np.zeros((batch, 3))
    for b in range(batch):
        if has_world[b]:
            rotation = _kabsch(rest[torso], world[b, torso], np.maximum(visible[b, torso], 0.05))
        else:
            rotation = np.diag([1.0, -1.0, -1.0])
        init_r[b] = _axis_angle(rotation)
        init_t[b] = _initial_translation(skeleton.points @ rotation.T, keypoints[b], Ks[b])

    free = torch.zeros(24, dtype=torch.bool)
    free[[SMPL_JOINTS.index(name) for name in FREE_JOINTS]] = True
    body_pose = torch.zeros(batch, 24, 3, dtype=dtype, device=device, requires_grad=True)
    orient = torch.tensor(init_r, dtype=dtype, device=device, requires_grad=True)
    trans = torch.tensor(init_t, dtype=dtype, device=device, requires_grad=True)
    target_2d = torch.tensor(keypoints[:, :, :2], dtype=dtype, device=device)
    weight = torch.tensor(visible * usable[:, None], dtype=dtype, device=device)
    weight_3d = weight * torch.tensor(has_world[:, None], dtype=dtype, device=device)
    target_3d = torch.tensor(world, dtype=dtype, device=device)
    K = torch.tensor(Ks, dtype=dtype, device=device)
    scale_2d = torch.tensor(PERSON_HEIGHT_M / heights, dtype=dtype, device=device)[:, None]
    free_mask = free.to(device)[None, :, None].to(dtype)
    knees = [SMPL_JOINTS.index(n) for n in ("left_knee", "right_knee")]
    elbows = [SMPL_JOINTS.index(n) for n in ("left_elbow", "right_elbow")]

    def evaluate():
        pose = body_pose * free_mask
        full = torch.cat([torch.zeros_like(pose[:, :1]), pose[:, 1:]], dim=1)
        body_points = pose_points(full, bones, offsets, attach)  # (B, P, 3) body frame
        rotation = axis_angle_matrices(orient)  # (B, 3, 3)
        camera_points = body_points @ rotation.transpose(1, 2)
        hip_centre = camera_points[:, hips].mean(1, keepdim=True)
        error_3d = ((camera_points - hip_centre - target_3d) ** 2).sum(-1)
        in_camera = camera_points + trans[:, None]
        z = in_camera[..., 2:3].clamp(min=1e-3)
        pixels = (in_camera @ K.transpose(1, 2))[..., :2] / z
        error_2d = ((pixels - target_2d) ** 2).sum(-1)
        return pose, pixels, error_2d, error_3d, camera_points - hip_centre

    def loss(stage_all: bool):
        pose, _, error_2d, error_3d, _ = evaluate()
        total = config.weight_3d * (weight_3d * error_3d).sum(1) / weight_3d.sum(1).clamp(min=1e-9)
        total = total + config.weight_2d * (weight * error_2d * scale_2d**2).sum(1) / weight.sum(1).clamp(min=1e-9)
        if stage_all:
            total = total + config.weight_pose * (pose**2).sum((1, 2))
            # Knees flex about +x, elbows about -y (left) / +y (right); other axes barely move.
            knee = pose[:, knees]
            elbow = pose[:, elbows]
            limits = torch.relu(-knee[..., 0]) ** 2 + 0.5 * (knee[..., 1:] ** 2).sum(-1)
            limits = limits.sum(-1) + torch.relu(elbow[:, 0, 1]) ** 2 + torch.relu(-elbow[:, 1, 1]) ** 2
            limits = limits + 0.5 * (elbow[..., 2] ** 2).sum(-1)
            total = total + config.weight_limits * limits
        value = total.sum()
        if sequence and batch > 1 and config.weight_smooth > 0:
            value = value + config.weight_smooth * (
                ((pose[1:] - pose[:-1]) ** 2).sum()
                + ((orient[1:] - orient[:-1]) ** 2).sum()
                + ((trans[1:] - trans[:-1]) ** 2).sum()
            )
        return value

    for stage_all, steps, variables in (
        (False, config.camera_iterations, [orient, trans]),
        (True, config.iterations, [body_pose, orient, trans]),
    ):
        optimiser = torch.optim.Adam(variables, lr=config.learning_rate)
        for _ in range(steps):
            optimiser.zero_grad()
            value = loss(stage_all)
            value.backward()
            optimiser.step()

    with torch.no_grad():
        pose, pixels, error_2d, error_3d, _ = evaluate()
    pose = pose.cpu().numpy()
    pixel_error = np.sqrt(error_2d.cpu().numpy())
    point_error = np.sqrt(error_3d.cpu().numpy()) * 1000.0
    results = []
    for b, observation in enumerate(observations):
        seen = visible[b] >= 0.5
        mean_2d = float(pixel_error[b][seen].mean()) if seen.any() else float("nan")
        mean_3d = float(point_error[b][seen].mean()) if seen.any() and has_world[b] else float("nan")
        reason = None
        if not observation.found:
            reason = "no person found by the pose estimator"
        elif not usable[b]:
            reason = f"only {int(seen.sum())} landmarks visible (need {config.min_visible})"
        elif not mean_2d <= config.max_error_2d * observation.height:
            reason = f"mean reprojection error {mean_2d:.1f} px above {config.max_error_2d * observation.height:.1f} px"
        elif has_world[b] and not mean_3d <= config.max_error_3d_mm:
            reason = f"mean 3D landmark error {mean_3d:.0f} mm above {config.max_error_3d_mm:.0f} mm"
        rotation = axis_angle_matrices(orient[b : b + 1].detach()).cpu().numpy()[0]
        full_pose = pose[b].copy()
        full_pose[0] = 0.0  # the world frame is the body's own upright frame
        results.append(
            FitResult(
                model=skeleton.model,
                pose=[float(v) for v in full_pose.reshape(-1)],
                orientation=[float(v) for v in _axis_angle(rotation)],
                camera=camera_from_fit(
                    rotation, trans[b].detach().cpu().numpy(), Ks[b], config.fov_deg, observation.width, observation.height
                ),
                error_2d_px=mean_2d,
                error_3d_mm=mean_3d,
                visible=int(seen.sum()),
                success=reason is None,
                reason=reason,
            )
        )
    return results
