"""A differentiable stand-in for the body model: SMPL-24 forward kinematics plus attached keypoints.

The body models of the conditions stage (anny, SMPL) answer in numpy, without gradients, and a full
mesh per optimisation step would be wasted: the fit only looks at ~19 points. So the fitter poses the
body model's own rest skeleton in PyTorch. Both backends move every bone of an SMPL segment with that
segment's world rotation (anny through its retargeting, SMPL through LBS), so chaining world
rotations over the rest joint offsets reproduces the model's joints exactly; keypoints (COCO-17 face,
shoulders, hips...) are attached rigidly to the joint they move with, offset as in the rest pose.
The skeleton is read from the model once (``Skeleton.from_body``); everything after is batched torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.rotations import SMPL_JOINTS, SMPL_PARENTS
from ..schema import COCO17_KEYPOINTS, OPENPOSE18_KEYPOINTS

# Which SMPL joint each fitted point moves with. COCO-17 points come from the model's keypoints;
# the two "foot" points (toe tips: BlazePose's foot_index) are SMPL's own foot joints.
KEYPOINT_JOINTS: dict[str, str] = {
    "nose": "head",
    "left_eye": "head",
    "right_eye": "head",
    "left_ear": "head",
    "right_ear": "head",
    "left_shoulder": "left_shoulder",
    "right_shoulder": "right_shoulder",
    "left_elbow": "left_elbow",
    "right_elbow": "right_elbow",
    "left_wrist": "left_wrist",
    "right_wrist": "right_wrist",
    "left_hip": "pelvis",
    "right_hip": "pelvis",
    "left_knee": "left_knee",
    "right_knee": "right_knee",
    "left_ankle": "left_ankle",
    "right_ankle": "right_ankle",
    "left_foot_index": "left_ankle",
    "right_foot_index": "right_ankle",
}
FIT_POINTS: tuple[str, ...] = tuple(KEYPOINT_JOINTS)


@dataclass(frozen=True)
class Skeleton:
    """Rest joints (24, 3) and fitted points (P, 3) of one body model, world frame, pelvis at 0."""

    model: str
    joints: np.ndarray
    points: np.ndarray

    @classmethod
    def from_body(cls, body, shape=None) -> "Skeleton":
        """Read the rest skeleton off a ``posedive.body.models.BodyModel`` (one forward pass), in its
        own shape or in ``shape`` (values in the order of ``body.shape_labels``)."""
        rest = body.forward(np.zeros((1, 72))) if shape is None else body.forward(np.zeros((1, 72)), shape=shape)
        joints = np.asarray(rest.joints[0], dtype=np.float64)
        openpose = np.asarray(rest.keypoints[0], dtype=np.float64)
        coco = {name: openpose[OPENPOSE18_KEYPOINTS.index(name)] for name in COCO17_KEYPOINTS}
        coco["left_foot_index"] = joints[SMPL_JOINTS.index("left_foot")]
        coco["right_foot_index"] = joints[SMPL_JOINTS.index("right_foot")]
        return cls(model=body.name, joints=joints, points=np.stack([coco[name] for name in FIT_POINTS]))

    def torch_parts(self, dtype, device):
        import torch

        attach = [SMPL_JOINTS.index(KEYPOINT_JOINTS[name]) for name in FIT_POINTS]
        offsets = self.points - self.joints[attach]
        bones = self.joints - np.where(np.array(SMPL_PARENTS)[:, None] >= 0, self.joints[np.maximum(SMPL_PARENTS, 0)], 0)
        return (
            torch.as_tensor(bones, dtype=dtype, device=device),
            torch.as_tensor(offsets, dtype=dtype, device=device),
            torch.as_tensor(attach, device=device),
        )


def axis_angle_matrices(axis_angle):
    """Rodrigues' formula ``cos I + sin [a]x + (1 - cos) a a^T``, (..., 3) -> (..., 3, 3), smooth at zero."""
    import torch

    angle = torch.sqrt((axis_angle * axis_angle).sum(-1, keepdim=True) + 1e-12)
    axis = axis_angle / angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    sin, cos = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    return cos * eye + sin * cross + (1 - cos) * axis[..., :, None] * axis[..., None, :]


def pose_points(poses, bones, offsets, attach):
    """(B, 24, 3) axis-angle (joint 0 = global orientation) -> (B, P, 3) fitted points, pelvis at 0."""
    import torch

    local = axis_angle_matrices(poses)
    world = [local[:, 0]]
    position = [torch.zeros_like(poses[:, 0])]
    for j in range(1, len(SMPL_PARENTS)):
        parent = SMPL_PARENTS[j]
        world.append(world[parent] @ local[:, j])
        position.append(position[parent] + (world[parent] @ bones[j].unsqueeze(-1)).squeeze(-1))
    world_r = torch.stack(world, dim=1)  # (B, 24, 3, 3)
    joints = torch.stack(position, dim=1)  # (B, 24, 3)
    return joints[:, attach] + (world_r[:, attach] @ offsets.unsqueeze(-1)).squeeze(-1)
