"""Importer of BVH motion capture, read with the ``bvh`` package."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import FormatError
from ...geometry.rotations import (
    SMPL_JOINTS,
    SMPL_PARENTS,
    SMPL_REST_OFFSETS,
    global_to_local,
    matrix_to_axis_angle,
    rotation_between,
)
from .format import IMPORT_HINT, PoseBank, Up, clip_bank, combine, fix_up

BVH_LICENCE = "unknown (user-supplied BVH)"

# BVH joint names (lower case, no "mixamorig:" prefix, no '_' or ' ') for each SMPL joint, in order of
# preference. The spine is matched by position along the hips-to-neck chain instead.
_BVH_NAMES: dict[str, tuple[str, ...]] = {
    "pelvis": ("hips", "pelvis", "root", "hip"),
    "neck": ("neck", "neck1", "lowerneck"),
    "head": ("head",),
}
for _s, _l in (("left", "l"), ("right", "r")):
    _BVH_NAMES.update(
        {
            f"{_s}_hip": (f"{_s}upleg", f"{_s}thigh", f"{_s}hip", f"{_s}upperleg", f"{_l}thigh", f"{_l}hip", f"{_l}femur"),
            f"{_s}_knee": (f"{_s}leg", f"{_s}knee", f"{_s}shin", f"{_s}lowerleg", f"{_l}shin", f"{_l}knee", f"{_l}tibia"),
            f"{_s}_ankle": (f"{_s}foot", f"{_s}ankle", f"{_l}foot", f"{_l}ankle"),
            f"{_s}_foot": (f"{_s}toebase", f"{_s}toe", f"{_s}toes", f"{_l}toe", f"{_l}toes"),
            f"{_s}_collar": (f"{_s}shoulder", f"{_s}collar", f"{_s}clavicle", f"{_l}collar", f"{_l}clavicle"),
            f"{_s}_shoulder": (f"{_s}arm", f"{_s}upperarm", f"{_s}humerus", f"{_l}shldr", f"{_l}humerus", f"{_l}upperarm"),
            f"{_s}_elbow": (f"{_s}forearm", f"{_s}lowerarm", f"{_s}elbow", f"{_l}forearm", f"{_l}radius"),
            f"{_s}_wrist": (f"{_s}hand", f"{_s}wrist", f"{_l}hand", f"{_l}wrist"),
        }
    )
# SMPL joints whose rest direction (towards this child) is matched to the BVH skeleton's, so a BVH
# whose rest pose is not SMPL's T-pose (arms down, say) still lands correctly.
_REST_MATCHED = {
    "left_shoulder": "left_elbow",
    "right_shoulder": "right_elbow",
    "left_elbow": "left_wrist",
    "right_elbow": "right_wrist",
    "left_hip": "left_knee",
    "right_hip": "right_knee",
    "left_knee": "left_ankle",
    "right_knee": "right_ankle",
}


def _bvh_key(name: str) -> str:
    return re.sub(r"[\s_:.-]", "", name.lower().replace("mixamorig", ""))


def import_bvh(
    paths: Sequence[Path], *, every: int = 4, up: Up = "y", licence: str = BVH_LICENCE, source: str = "bvh"
) -> PoseBank:
    """BVH motion capture, read with the ``bvh`` package. Joint rotations are chained into world
    rotations, matched to SMPL joints by name, corrected for the file's rest pose and turned back
    into SMPL-24 local rotations. BVH rest frames are world-aligned (y up, facing +z by convention)."""
    from bvh import Bvh
    from scipy.spatial.transform import Rotation

    banks = []
    for path in sorted(Path(p) for p in paths):
        try:
            mocap = Bvh(Path(path).read_text())
            names = list(mocap.get_joints_names())
        except Exception as error:  # the bvh package raises bare errors on malformed files
            raise FormatError(f"{path}: cannot parse BVH: {error}", hint=IMPORT_HINT) from None
        keys = {_bvh_key(n): n for n in names}
        parent_of = {n: (mocap.joint_parent(n).name if mocap.joint_parent_index(n) >= 0 else None) for n in names}
        frames = np.arange(0, mocap.nframes, max(1, every))

        world: dict[str, np.ndarray] = {}
        for name in names:
            channels = [c for c in mocap.joint_channels(name) if c.endswith("rotation")]
            if channels:
                values = np.asarray(mocap.frames_joint_channels(name, channels), dtype=np.float64)[frames]
                order = "".join(c[0].upper() for c in channels)
                local = Rotation.from_euler(order, values, degrees=True).as_matrix()
            else:
                local = np.tile(np.eye(3), (len(frames), 1, 1))
            parent = parent_of[name]
            world[name] = local if parent is None else world[parent] @ local

        def find(joint: str) -> str | None:
            return next((keys[k] for k in _BVH_NAMES.get(joint, ()) if k in keys), None)

        mapped: dict[str, str] = {j: n for j in SMPL_JOINTS if (n := find(j)) is not None}
        if "pelvis" not in mapped:
            mapped["pelvis"] = names[0]
        if "neck" in mapped:
            chain, node = [], parent_of[mapped["neck"]]
            while node is not None and node != mapped["pelvis"]:
                chain.append(node)
                node = parent_of[node]
            chain.reverse()
            for joint, fraction in (("spine1", 0.0), ("spine2", 0.5), ("spine3", 1.0)):
                if chain:
                    mapped[joint] = chain[int(round(fraction * (len(chain) - 1)))]

        def rest_position(name: str) -> np.ndarray:
            position = np.zeros(3)
            while name is not None:
                position = position + np.asarray(mocap.joint_offset(name), dtype=np.float64)
                name = parent_of[name]
            return position

        correction = {j: np.eye(3) for j in SMPL_JOINTS}
        for joint, child in _REST_MATCHED.items():
            if joint in mapped and child in mapped:
                bvh_dir = rest_position(mapped[child]) - rest_position(mapped[joint])
                smpl_dir = SMPL_REST_OFFSETS[SMPL_JOINTS.index(child)]
                if np.linalg.norm(bvh_dir) > 1e-9:
                    correction[joint] = rotation_between(smpl_dir, bvh_dir)
        for joint, source_joint in (("left_wrist", "left_elbow"), ("right_wrist", "right_elbow")):
            if joint not in mapped or mapped[joint] == mapped.get(source_joint):
                correction[joint] = correction[source_joint]

        smpl_world = np.empty((len(frames), 24, 3, 3))
        for index, joint in enumerate(SMPL_JOINTS):
            parent = SMPL_PARENTS[index]
            if joint in mapped:
                smpl_world[:, index] = world[mapped[joint]] @ correction[joint]
            else:  # unmatched joints (hands, feet, collars of simple rigs) follow their parent
                smpl_world[:, index] = smpl_world[:, parent] @ np.linalg.inv(correction[SMPL_JOINTS[parent]]) @ correction[joint]
        poses = matrix_to_axis_angle(global_to_local(smpl_world)).reshape(-1, 72)
        banks.append(clip_bank(fix_up(poses, up), source, path.stem, frames, licence))
    return combine(banks)
