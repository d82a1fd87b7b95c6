"""Small rotation helpers shared by the body models, the pose bank and the cameras.

Poses cross the conditions stage as SMPL-24 axis-angle vectors (72 values, global orientation
first); these helpers convert between that form, rotation matrices and quaternions, batched, with
scipy doing the numerics.
"""

from __future__ import annotations

import numpy as np

SMPL_JOINTS: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
SMPL_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# Index of each joint's mirror image (left <-> right), used to mirror poses.
SMPL_MIRROR: tuple[int, ...] = tuple(
    SMPL_JOINTS.index(name.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
    for name in SMPL_JOINTS
)

# Approximate SMPL neutral rest skeleton (metres, y up, body facing +z, +x is the body's left):
# each joint's offset from its parent. Used where a posed skeleton is needed without a body model
# (de-duplicating and embedding poses), never for rendering.
SMPL_REST_OFFSETS = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.07, -0.09, 0.0],
        [-0.07, -0.09, 0.0],
        [0.0, 0.11, -0.02],
        [0.04, -0.38, 0.0],
        [-0.04, -0.38, 0.0],
        [0.0, 0.13, 0.0],
        [-0.01, -0.40, -0.04],
        [0.01, -0.40, -0.04],
        [0.0, 0.06, 0.02],
        [0.02, -0.06, 0.12],
        [-0.02, -0.06, 0.12],
        [0.0, 0.21, -0.03],
        [0.08, 0.12, -0.01],
        [-0.08, 0.12, -0.01],
        [0.0, 0.09, 0.05],
        [0.12, 0.04, -0.01],
        [-0.12, 0.04, -0.01],
        [0.26, -0.01, -0.02],
        [-0.26, -0.01, -0.02],
        [0.25, 0.01, 0.0],
        [-0.25, 0.01, 0.0],
        [0.08, -0.01, -0.01],
        [-0.08, -0.01, -0.01],
    ],
    dtype=np.float64,
)


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    from scipy.spatial.transform import Rotation

    axis_angle = np.asarray(axis_angle, dtype=np.float64)
    flat = Rotation.from_rotvec(axis_angle.reshape(-1, 3)).as_matrix()
    return flat.reshape(*axis_angle.shape[:-1], 3, 3)


def matrix_to_axis_angle(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle."""
    from scipy.spatial.transform import Rotation

    matrix = np.asarray(matrix, dtype=np.float64)
    flat = Rotation.from_matrix(matrix.reshape(-1, 3, 3)).as_rotvec()
    return flat.reshape(*matrix.shape[:-2], 3)


def quaternion_wxyz_to_matrix(quaternion: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions in (w, x, y, z) order -> (..., 3, 3); normalised first."""
    from scipy.spatial.transform import Rotation

    quaternion = np.asarray(quaternion, dtype=np.float64)
    xyzw = quaternion.reshape(-1, 4)[:, [1, 2, 3, 0]]
    return Rotation.from_quat(xyzw).as_matrix().reshape(*quaternion.shape[:-1], 3, 3)


def rotation_between(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction ``source`` onto direction ``target`` (3x3)."""
    a = np.asarray(source, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin, cos = np.linalg.norm(axis), float(np.dot(a, b))
    if sin < 1e-9:
        if cos > 0:
            return np.eye(3)
        ortho = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return axis_angle_to_matrix(np.pi * ortho / np.linalg.norm(ortho))
    return axis_angle_to_matrix(axis / sin * np.arctan2(sin, cos))


def pose_to_local_matrices(poses: np.ndarray) -> np.ndarray:
    """(B, 72) SMPL-24 axis-angle poses -> (B, 24, 3, 3) local joint rotations."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 72:
        raise ValueError(f"poses must have shape (B, 72) (SMPL-24 axis-angle), got {poses.shape}")
    return axis_angle_to_matrix(poses.reshape(-1, 24, 3))


def local_to_global(local: np.ndarray, parents: tuple[int, ...] = SMPL_PARENTS) -> np.ndarray:
    """(B, J, 3, 3) local rotations -> world rotations of each joint (parents precede children)."""
    world = np.empty_like(local)
    for joint, parent in enumerate(parents):
        world[:, joint] = local[:, joint] if parent < 0 else world[:, parent] @ local[:, joint]
    return world


def global_to_local(world: np.ndarray, parents: tuple[int, ...] = SMPL_PARENTS) -> np.ndarray:
    """Inverse of :func:`local_to_global`."""
    local = np.empty_like(world)
    for joint, parent in enumerate(parents):
        local[:, joint] = world[:, joint] if parent < 0 else np.swapaxes(world[:, parent], -1, -2) @ world[:, joint]
    return local


def smpl_skeleton(poses: np.ndarray) -> np.ndarray:
    """(B, 72) poses -> (B, 24, 3) joint positions of the approximate rest skeleton, pelvis at 0."""
    world = local_to_global(pose_to_local_matrices(poses))
    positions = np.zeros((world.shape[0], 24, 3))
    for joint, parent in enumerate(SMPL_PARENTS):
        if parent >= 0:
            positions[:, joint] = positions[:, parent] + world[:, parent] @ SMPL_REST_OFFSETS[joint]
    return positions


def mirror_poses(poses: np.ndarray) -> np.ndarray:
    """Mirror SMPL-24 poses left <-> right (reflection through the body's sagittal plane x = 0).

    A reflection ``S = diag(-1, 1, 1)`` maps a rotation ``R`` to ``S R S``; for axis-angle that flips
    the y and z components. Joint slots swap with their mirror twins.
    """
    aa = np.asarray(poses, dtype=np.float64).reshape(-1, 24, 3)[:, list(SMPL_MIRROR)]
    aa = aa * np.array([1.0, -1.0, -1.0])
    return aa.reshape(-1, 72)


def heading_normalised(poses: np.ndarray) -> np.ndarray:
    """Remove the rotation about the vertical (y) axis from each pose's global orientation.

    The camera's azimuth is sampled separately, so two poses that differ only in heading are the
    same pose for de-duplication and embedding purposes.
    """
    poses = np.array(poses, dtype=np.float64).reshape(-1, 72)
    root = axis_angle_to_matrix(poses[:, :3])
    forward = root[:, :, 2]  # where the body's +z (its front) points
    yaw = np.arctan2(forward[:, 0], forward[:, 2])
    undo = axis_angle_to_matrix(np.stack([np.zeros_like(yaw), -yaw, np.zeros_like(yaw)], axis=1))
    poses[:, :3] = matrix_to_axis_angle(undo @ root)
    return poses
