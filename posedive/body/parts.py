"""Body-part labels of a body model's vertices: SMPL's 24 skinning parts, as Champ's semantic map colours them.

Champ's semantic map is SMPL's part segmentation rendered in a colour per part: its data preparation
(``scripts/data_processors/smpl/render_condition_maps.py``) paints every SMPL vertex in the colour
of one of 24 parts, and the parts are SMPL's joints (0 pelvis, 1 left hip = left thigh, ..., 15 head,
20/21 wrists = hands, 22/23 hand joints = fingers); counting its vertex colours gives exactly the
vertex counts that the argmax of SMPL's skinning weights gives (the head 1,203 vertices, each hand's
fingers 503). So a vertex's part is **the joint that moves it most**: the argmax of its linear-blend
skinning weights over the joints. This is the standard SMPL part assignment and it needs nothing but
the model file a user already has.

anny is skinned to its own 104 bones, not to SMPL's joints. Its vertices take the same rule (the bone
with the largest skinning weight) and each bone the SMPL part whose rotation drives it in posedive's
retargeting (``posedive.body.models.ANNY_BONE_TO_SMPL``): a vertex then has the part of the SMPL
joint it moves with, which is what the SMPL rule means. Bones the retargeting leaves to follow their
parent take their parent's part, except those SMPL has a part of its own for: toes (SMPL's feet,
joints 10/11), fingers and metacarpals (SMPL's hands, 22/23) and the eyes (the head).

Faces take one part each (:func:`face_parts`), so a flat per-face pass draws no colour that is not a
part's.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..geometry.rotations import SMPL_JOINTS

SMPL_PART_COUNT = len(SMPL_JOINTS)


def vertex_parts_from_weights(weights: np.ndarray) -> np.ndarray:
    """(V, 24) skinning weights over SMPL's joints -> (V,) part index: the joint with the largest weight."""
    weights = np.asarray(weights)
    if weights.ndim != 2 or weights.shape[1] != SMPL_PART_COUNT:
        raise ValueError(f"skinning weights must be (vertices, {SMPL_PART_COUNT}), got {weights.shape}")
    return np.argmax(weights, axis=1).astype(np.int64)


def _own_part(label: str) -> str | None:
    """The SMPL part of an anny bone that has one beyond the retargeting's (see the module docstring)."""
    side = {"L": "left", "R": "right"}.get(label.rsplit(".", 1)[-1])
    if side is not None and label.startswith("toe"):
        return f"{side}_foot"
    if side is not None and label.startswith(("finger", "metacarpal")):
        return f"{side}_hand"
    if label.startswith("eye"):
        return "head"
    return None


def anny_bone_parts(labels: Sequence[str], parents: Sequence[int], driving_joint: Mapping[str, str]) -> np.ndarray:
    """(bones,) SMPL part index of each anny bone. ``driving_joint`` maps a bone to the SMPL joint whose
    rotation it takes; bones without one take their own part (toes, fingers, eyes) or their parent's."""
    parts = np.full(len(labels), -1, dtype=np.int64)
    for index, label in enumerate(labels):  # anny lists parents before their children
        joint = _own_part(label) or driving_joint.get(label)
        if joint is not None:
            parts[index] = SMPL_JOINTS.index(joint)
        elif parents[index] >= 0:
            parts[index] = parts[parents[index]]
    if (parts < 0).any():
        orphans = [labels[i] for i in np.flatnonzero(parts < 0)]
        raise ValueError(f"anny bones without an SMPL part: {orphans}")
    return parts


def vertex_parts_from_sparse_weights(bone_indices: np.ndarray, bone_weights: np.ndarray,
                                     bone_parts: np.ndarray) -> np.ndarray:
    """anny's (V, K) bone indices and weights -> (V,) part index of the bone with the largest weight."""
    strongest = np.argmax(np.asarray(bone_weights), axis=1)
    bones = np.take_along_axis(np.asarray(bone_indices), strongest[:, None], axis=1)[:, 0]
    return np.asarray(bone_parts)[bones]


def face_parts(faces: np.ndarray, vertex_parts: np.ndarray) -> np.ndarray:
    """(F, 3) faces -> (F,) part index: the part two or three of its vertices share, else its first
    vertex's (a face on a seam of three parts is rare and small)."""
    labels = np.asarray(vertex_parts)[np.asarray(faces)]
    a, b, c = labels[:, 0], labels[:, 1], labels[:, 2]
    return np.where((b == c) & (a != b), b, a)
