"""Body models: SMPL-24 pose and shape in, posed mesh and keypoints out, in posedive's world frame.

World frame (shared by every backend, the cameras and the renderer): metres, y up, the body facing
+z, +x on the body's left (SMPL's own frame). Poses are SMPL-24 axis-angle vectors, theta in R^72,
global orientation first, relative to SMPL's T-pose rest. Outputs are re-centred so the pelvis sits
at the origin; the cameras look at the posed mesh's bounding-box centre anyway.

Backends:

* ``anny`` (default, works offline): the MakeHuman-based ``anny`` model. anny is z-up with the body
  facing -y; world = ``ANNY_TO_WORLD @ anny``. SMPL rotations are retargeted to anny's 104-bone rig
  (see :class:`AnnyBody`). Its shape is anny's phenotype (:class:`~posedive.body.shape.AnnyPhenotype`).
* ``smpl``: the user's own SMPL model file (``SMPL_{GENDER}.pkl``) through ``smplx``; its shape is the
  betas.

A body model has its own shape (given to the constructor, reported by ``shape()``); ``forward`` also
takes a shape per call, one for the batch or one per pose, so one loaded model poses many builds.

Each backend also regresses COCO-17 keypoints, from which :func:`openpose18_from_coco17` builds the
OpenPose-18 joints the skeleton image is drawn from (the neck is the shoulders' midpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, Sequence

import numpy as np

from ..errors import PathNotFound, RecipeError, StageUnavailable
from ..geometry.rotations import SMPL_JOINTS, SMPL_PARENTS, local_to_global, pose_to_local_matrices, rotation_between
from ..native_output import filtered_native_output, quiet_warp
from ..schema import COCO17_KEYPOINTS, OPENPOSE18_KEYPOINTS
from .parts import anny_bone_parts, vertex_parts_from_sparse_weights, vertex_parts_from_weights
from .shape import ANNY_PHENOTYPES, AnnyPhenotype, smpl_beta_labels

logger = logging.getLogger(__name__)

Gender = Literal["neutral", "male", "female"]

# anny is z-up with the body facing -y and its left on +x: (x, y, z) -> (x, z, -y).
ANNY_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# anny phenotype "gender" runs from 0 (male) to 1 (female): its blend shapes are ordered male, female.
ANNY_GENDER = {"male": 0.0, "neutral": 0.5, "female": 1.0}


@dataclass(frozen=True)
class BodyOutput:
    """A batch of posed bodies in the world frame."""

    vertices: np.ndarray  # (B, V, 3) float32, metres
    faces: np.ndarray  # (F, 3) int32, shared by the batch
    keypoints: np.ndarray  # (B, 18, 3) float32, OpenPose-18 joints in world coordinates
    joints: np.ndarray  # (B, 24, 3) float32, the model's own SMPL-24-like joints (anny: bone heads)


ShapeValues = Sequence[float] | np.ndarray


class BodyModel(Protocol):
    """SMPL-24 poses in, posed meshes out (world frame, metres).

    ``shape`` of ``forward``: None (the model's own shape), one shape vector for the whole batch,
    or a (B, S) array with one per pose, in the order of ``shape_labels``.
    """

    name: str
    shape_labels: tuple[str, ...]

    def shape(self) -> list[float]: ...

    def forward(self, poses: np.ndarray, shape: ShapeValues | None = None) -> BodyOutput: ...

    def vertex_parts(self) -> np.ndarray:
        """(V,) SMPL part (0-23) of every vertex (``posedive.body.parts``); the same for every pose and shape."""
        ...


def shape_batch(shape: ShapeValues, labels: Sequence[str], batch: int) -> np.ndarray:
    """A per-call shape as a (1, S) or (batch, S) float64 array, checked against the model's labels."""
    values = np.asarray(shape, dtype=np.float64)
    if values.ndim == 1:
        values = values[None]
    if values.ndim != 2 or values.shape[1] != len(labels) or values.shape[0] not in (1, batch):
        raise ValueError(
            f"shape: expected {len(labels)} values {tuple(labels)} or one row of them per pose ({batch}), "
            f"got shape {np.shape(shape)}"
        )
    return values


def openpose18_from_coco17(coco: np.ndarray) -> np.ndarray:
    """(..., 17, D) COCO-17 joints -> (..., 18, D) OpenPose-18 joints; neck = shoulders' midpoint."""
    coco = np.asarray(coco)
    index = {name: i for i, name in enumerate(COCO17_KEYPOINTS)}
    out = []
    for name in OPENPOSE18_KEYPOINTS:
        if name == "neck":
            out.append(0.5 * (coco[..., index["left_shoulder"], :] + coco[..., index["right_shoulder"], :]))
        else:
            out.append(coco[..., index[name], :])
    return np.stack(out, axis=-2)


# ------------------------------------------------------------------------------------------- anny
RIG_CACHE = 64
# Which SMPL joint's world rotation drives each anny bone; bones not listed follow their parent.
# The spine is spread by height: anny's five spine bones take the rotation of the SMPL segment they
# lie in (spine05 still belongs to the pelvis, spine01 to spine3).
ANNY_BONE_TO_SMPL: dict[str, str] = {
    "root": "pelvis",
    "spine05": "pelvis",
    "spine04": "spine1",
    "spine03": "spine1",
    "spine02": "spine2",
    "spine01": "spine3",
    "neck01": "neck",
    "neck02": "neck",
    "neck03": "neck",
    "head": "head",
}
for _side, _s in (("L", "left"), ("R", "right")):
    ANNY_BONE_TO_SMPL.update(
        {
            f"pelvis.{_side}": "pelvis",
            f"upperleg01.{_side}": f"{_s}_hip",
            f"upperleg02.{_side}": f"{_s}_hip",
            f"lowerleg01.{_side}": f"{_s}_knee",
            f"lowerleg02.{_side}": f"{_s}_knee",
            f"foot.{_side}": f"{_s}_ankle",
            f"clavicle.{_side}": f"{_s}_collar",
            f"shoulder01.{_side}": f"{_s}_collar",
            f"upperarm01.{_side}": f"{_s}_shoulder",
            f"upperarm02.{_side}": f"{_s}_shoulder",
            f"lowerarm01.{_side}": f"{_s}_elbow",
            f"lowerarm02.{_side}": f"{_s}_elbow",
            f"wrist.{_side}": f"{_s}_wrist",
        }
    )

# anny bones whose heads stand in for SMPL joints (used for retargeting checks and the pose plot).
ANNY_JOINT_BONES: dict[str, str] = {
    "pelvis": "root",
    "spine1": "spine04",
    "spine2": "spine02",
    "spine3": "spine01",
    "neck": "neck01",
    "head": "head",
}
for _side, _s in (("L", "left"), ("R", "right")):
    ANNY_JOINT_BONES.update(
        {
            f"{_s}_hip": f"upperleg01.{_side}",
            f"{_s}_knee": f"lowerleg01.{_side}",
            f"{_s}_ankle": f"foot.{_side}",
            f"{_s}_foot": f"toe3-1.{_side}",
            f"{_s}_collar": f"clavicle.{_side}",
            f"{_s}_shoulder": f"upperarm01.{_side}",
            f"{_s}_elbow": f"lowerarm01.{_side}",
            f"{_s}_wrist": f"wrist.{_side}",
            f"{_s}_hand": f"finger3-1.{_side}",
        }
    )


class AnnyBody:
    """The anny body driven by SMPL-24 poses.

    Retargeting works on world rotations. SMPL's joint rotations are chained into world rotations
    ``G_j`` (what each body part undergoes relative to the T-pose), moved into anny's axes
    (``A^T G_j A`` with ``A = ANNY_TO_WORLD``) and given to every anny bone that lies on that SMPL
    segment. anny's rest pose is an A-pose with slightly bent elbows, so the arm bones first take a
    fixed rest correction ``C_b`` that brings them to SMPL's T-pose (horizontal, straight arms):
    bone ``b`` gets ``G_b = A^T G_j A C_b``. anny's ``world-orient`` parameterisation takes each
    bone's world orientation ``G_b R_b`` (``R_b`` its rest orientation) and keeps every bone's head
    attached to its parent, so no joint offsets need converting.
    """

    name = "anny"
    shape_labels = ANNY_PHENOTYPES

    def __init__(self, gender: Gender = "neutral", phenotype: AnnyPhenotype | ShapeValues | None = None) -> None:
        import torch

        self._torch = torch
        self.gender = gender
        logger.debug("loading the anny body model (the first use builds anny's cache, about a minute)")
        quiet_warp()
        with filtered_native_output():  # anny initialises Warp, whose driver probe writes to fd 2
            import anny

            self.model = anny.Anny()
        self.model.eval()
        if tuple(self.model.phenotype_labels) != ANNY_PHENOTYPES:
            labels = self.model.phenotype_labels
            raise StageUnavailable(f"anny's phenotypes are {labels}, posedive expects {ANNY_PHENOTYPES}",
                                   hint="install the anny version posedive names in pyproject.toml")
        self.regressor = anny.KeypointsRegressor.coco(self.model, labels=list(COCO17_KEYPOINTS))
        self.labels: list[str] = list(self.model.bone_labels)
        self.parents: list[int] = [int(p) for p in self.model.bone_parents]
        self.faces = np.asarray(self.model.get_triangular_faces(), dtype=np.int32)
        if phenotype is None:
            self._phenotype: dict[str, float] = {"gender": ANNY_GENDER[gender]}
        else:
            if gender != "neutral":
                raise ValueError(f"give either gender ({gender!r}) or a phenotype (it has its own gender), not both")
            if not isinstance(phenotype, AnnyPhenotype):
                phenotype = AnnyPhenotype.from_values(shape_batch(phenotype, ANNY_PHENOTYPES, 1)[0])
            self._phenotype = dict(zip(ANNY_PHENOTYPES, phenotype.values()))
        self._arm_bones = self._arm_bone_groups()
        self._rigs: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        with torch.no_grad():
            rest = self.model(phenotype_kwargs=self._phenotype)
        self.rest_bone_poses = rest["rest_bone_poses"][0].double().numpy()  # (104, 4, 4), anny frame
        self._smpl_index = np.array(
            [SMPL_JOINTS.index(ANNY_BONE_TO_SMPL[label]) if label in ANNY_BONE_TO_SMPL else -1 for label in self.labels]
        )
        self._rest_correction = self._arm_rest_corrections(self.rest_bone_poses)
        self._joint_bones = [self.labels.index(ANNY_JOINT_BONES[name]) for name in SMPL_JOINTS]

    def shape(self) -> list[float]:
        return [float(self._phenotype.get(name, 0.5)) for name in ANNY_PHENOTYPES]

    def vertex_parts(self) -> np.ndarray:
        """(V,) SMPL part of every vertex: its strongest bone's part (``posedive.body.parts``)."""
        bone_parts = anny_bone_parts(self.labels, self.parents, ANNY_BONE_TO_SMPL)
        return vertex_parts_from_sparse_weights(self.model.vertex_bone_indices.numpy(),
                                                self.model.vertex_bone_weights.numpy(), bone_parts)

    def phenotype(self) -> AnnyPhenotype:
        return AnnyPhenotype.from_values(self.shape())

    def _arm_bone_groups(self) -> dict[str, tuple[list[int], list[int]]]:
        """Per side, the bones taking the upper-arm and the forearm rest correction."""
        groups = {}
        for side in ("L", "R"):
            upper = [i for i, label in enumerate(self.labels) if label in (f"upperarm01.{side}", f"upperarm02.{side}")]
            lower = [
                i
                for i, label in enumerate(self.labels)
                if i not in upper and label.endswith(f".{side}") and self._descends_from(i, f"lowerarm01.{side}")
            ]
            groups[side] = (upper, lower)
        return groups

    def _arm_rest_corrections(self, rest_bone_poses: np.ndarray) -> np.ndarray:
        """Per-bone rotations (anny frame) that take anny's rest arms to SMPL's T-pose."""
        corrections = np.tile(np.eye(3), (len(self.labels), 1, 1))

        def direction(label: str) -> np.ndarray:
            return rest_bone_poses[self.labels.index(label), :3, 1]  # anny bones point along local +y

        for side, sign in (("L", 1.0), ("R", -1.0)):
            lateral = np.array([sign, 0.0, 0.0])
            upper_bones, lower_bones = self._arm_bones[side]
            corrections[upper_bones] = rotation_between(direction(f"upperarm01.{side}"), lateral)
            corrections[lower_bones] = rotation_between(direction(f"lowerarm01.{side}"), lateral)
        return corrections

    def _descends_from(self, index: int, ancestor: str) -> bool:
        target = self.labels.index(ancestor)
        while index >= 0:
            if index == target:
                return True
            index = self.parents[index]
        return False

    def _rig(self, phenotypes: np.ndarray) -> tuple[object, np.ndarray, np.ndarray]:
        """(P, 6) phenotypes -> anny's phenotype input, rest bone poses and arm corrections: unbatched
        ((104, ...)) for one phenotype, (P, 104, ...) for several.

        Rest poses are kept for the last ``RIG_CACHE`` phenotypes: shape estimation poses the same
        few candidate shapes in every image of an identity."""
        torch = self._torch
        keys = [row.tobytes() for row in phenotypes]
        # This call's rigs are held here: adding the missing ones may evict a cached one it also needs.
        rigs = {key: self._rigs[key] for key in keys if key in self._rigs}
        missing = [i for i, key in enumerate(keys) if key not in rigs]
        if missing:
            with torch.no_grad():
                rest = self.model(phenotype_kwargs=torch.as_tensor(phenotypes[missing], dtype=self.model.dtype))
            for i, poses in zip(missing, rest["rest_bone_poses"].double().numpy()):
                rigs[keys[i]] = self._rigs[keys[i]] = (poses, self._arm_rest_corrections(poses))
                while len(self._rigs) > RIG_CACHE:
                    self._rigs.pop(next(iter(self._rigs)))
        poses = np.stack([rigs[key][0] for key in keys])
        corrections = np.stack([rigs[key][1] for key in keys])
        kwargs = torch.as_tensor(phenotypes, dtype=self.model.dtype)
        if len(phenotypes) == 1:
            return kwargs, poses[0], corrections[0]
        return kwargs, poses, corrections

    def bone_world_rotations(self, poses: np.ndarray, rest_correction: np.ndarray | None = None) -> np.ndarray:
        """(B, 72) SMPL poses -> (B, 104, 3, 3) world rotation of every anny bone, anny frame.

        ``rest_correction``: (104, 3, 3) arm corrections, or (B, 104, 3, 3) one set per pose; the
        model's own by default."""
        correction = self._rest_correction if rest_correction is None else rest_correction
        smpl_world = local_to_global(pose_to_local_matrices(poses))  # world frame
        a = ANNY_TO_WORLD
        in_anny = a.T @ smpl_world @ a  # (B, 24, 3, 3)
        batch = in_anny.shape[0]
        bones = np.empty((batch, len(self.labels), 3, 3))
        for index, (smpl, parent) in enumerate(zip(self._smpl_index, self.parents)):
            if smpl >= 0:
                bones[:, index] = in_anny[:, smpl] @ correction[..., index, :, :]
            elif parent >= 0:
                bones[:, index] = (
                    bones[:, parent] @ np.linalg.inv(correction[..., parent, :, :]) @ correction[..., index, :, :]
                )
            else:
                bones[:, index] = np.eye(3)
        return bones

    def forward(self, poses: np.ndarray, shape: AnnyPhenotype | ShapeValues | None = None) -> BodyOutput:
        """Pose the body; ``shape`` (phenotype values in ``ANNY_PHENOTYPES`` order, one set or one
        per pose) replaces the body's own phenotype for this call."""
        torch = self._torch
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 72)
        if shape is None:
            phenotype, rest_bone_poses, correction = self._phenotype, self.rest_bone_poses, self._rest_correction
        else:
            values = shape.values() if isinstance(shape, AnnyPhenotype) else shape
            phenotype, rest_bone_poses, correction = self._rig(shape_batch(values, ANNY_PHENOTYPES, poses.shape[0]))
        rotations = self.bone_world_rotations(poses, correction)
        deltas = np.tile(np.eye(4), (poses.shape[0], len(self.labels), 1, 1))
        deltas[:, :, :3, :3] = rotations @ rest_bone_poses[..., :3, :3]
        deltas[:, 0, :3, 3] = rest_bone_poses[..., 0, :3, 3]
        with torch.no_grad():
            out = self.model(
                pose_parameters=torch.as_tensor(deltas, dtype=self.model.dtype),
                phenotype_kwargs=phenotype,
                pose_parameterization="world-orient",
            )
            coco = self.regressor(out)
        origin = rest_bone_poses[..., 0, :3, 3]
        if origin.ndim == 2:
            origin = origin[:, None]
        heads = out["bone_poses"][..., :3, 3].double().numpy()[:, self._joint_bones]

        def to_world(points: np.ndarray) -> np.ndarray:
            return ((points - origin) @ ANNY_TO_WORLD.T).astype(np.float32)

        return BodyOutput(
            vertices=to_world(out["vertices"].double().numpy()),
            faces=self.faces,
            keypoints=to_world(openpose18_from_coco17(coco.double().numpy())),
            joints=to_world(heads),
        )


# ------------------------------------------------------------------------------------------- SMPL
# COCO-17 keypoints from SMPL joints. The face points are fixed offsets in the head joint's frame
# (metres), so the backend also works with SMPL-format files whose mesh is not SMPL's own.
_SMPL_COCO_FROM_JOINT = {
    "left_shoulder": "left_shoulder",
    "right_shoulder": "right_shoulder",
    "left_elbow": "left_elbow",
    "right_elbow": "right_elbow",
    "left_wrist": "left_wrist",
    "right_wrist": "right_wrist",
    "left_hip": "left_hip",
    "right_hip": "right_hip",
    "left_knee": "left_knee",
    "right_knee": "right_knee",
    "left_ankle": "left_ankle",
    "right_ankle": "right_ankle",
}
_SMPL_FACE_OFFSETS = {
    "nose": (0.0, 0.0, 0.11),
    "left_eye": (0.035, 0.035, 0.09),
    "right_eye": (-0.035, 0.035, 0.09),
    "left_ear": (0.075, 0.01, 0.0),
    "right_ear": (-0.075, 0.01, 0.0),
}


class SMPLBody:
    """The user's SMPL model (never shipped), loaded with ``smplx`` and posed with its LBS."""

    name = "smpl"

    def __init__(self, model_dir: Path, gender: Gender = "neutral", betas: Sequence[float] | None = None) -> None:
        import smplx
        import torch

        self._torch = torch
        model_dir = Path(model_dir)
        path = model_dir / f"SMPL_{gender.upper()}.pkl"
        if not path.is_file():
            raise PathNotFound(
                f"body.smpl_model_dir: {path} not found (expected SMPL's model file for gender {gender!r})",
                hint="download SMPL (e.g. SMPL_NEUTRAL.pkl) from https://smpl.is.tue.mpg.de and point "
                "body.smpl_model_dir at its folder",
            )
        self.model = smplx.SMPL(model_path=str(path), gender=gender)
        self.faces = np.asarray(self.model.faces, dtype=np.int32)
        count = int(self.model.shapedirs.shape[-1])
        self.shape_labels = smpl_beta_labels(count)
        values = list(betas or [])[:count]
        self._betas = values + [0.0] * (count - len(values))

    def shape(self) -> list[float]:
        return list(self._betas)

    def vertex_parts(self) -> np.ndarray:
        """(V,) SMPL part of every vertex: the argmax of its skinning weights (``posedive.body.parts``)."""
        return vertex_parts_from_weights(self.model.lbs_weights.double().numpy())

    def forward(self, poses: np.ndarray, shape: ShapeValues | None = None) -> BodyOutput:
        """Pose the body; ``shape`` (betas, one set or one per pose) replaces its own for this call."""
        torch = self._torch
        from smplx.lbs import lbs

        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 72)
        batch = poses.shape[0]
        m = self.model
        if shape is None:
            betas = torch.tensor([self._betas] * batch, dtype=m.shapedirs.dtype)
        else:
            rows = shape_batch(shape, self.shape_labels, batch)
            betas = torch.as_tensor(np.repeat(rows, batch // len(rows), axis=0), dtype=m.shapedirs.dtype)
        with torch.no_grad():
            vertices, joints = lbs(
                betas,
                torch.as_tensor(poses, dtype=m.shapedirs.dtype),
                m.v_template,
                m.shapedirs,
                m.posedirs,
                m.J_regressor,
                m.parents,
                m.lbs_weights,
            )
        vertices = vertices.double().numpy()
        joints = joints.double().numpy()[:, :24]
        pelvis = joints[:, :1]
        world = local_to_global(pose_to_local_matrices(poses))
        head = SMPL_JOINTS.index("head")
        coco = np.zeros((batch, 17, 3))
        for k, name in enumerate(COCO17_KEYPOINTS):
            if name in _SMPL_COCO_FROM_JOINT:
                coco[:, k] = joints[:, SMPL_JOINTS.index(_SMPL_COCO_FROM_JOINT[name])]
            else:
                coco[:, k] = joints[:, head] + world[:, head] @ np.array(_SMPL_FACE_OFFSETS[name])
        return BodyOutput(
            vertices=(vertices - pelvis).astype(np.float32),
            faces=self.faces,
            keypoints=openpose18_from_coco17(coco - pelvis).astype(np.float32),
            joints=(joints - pelvis).astype(np.float32),
        )


def load_body_model(
    model: Literal["anny", "smpl"] = "anny",
    *,
    gender: Gender = "neutral",
    smpl_model_dir: Path | None = None,
    shape: ShapeValues | None = None,
) -> BodyModel:
    """Build the body model a recipe names (``recipe.body``); ``shape`` is its own shape (anny's
    phenotype values or SMPL's betas), the neutral body when omitted."""
    if model == "anny":
        return AnnyBody(gender=gender, phenotype=shape)
    if model == "smpl":
        if smpl_model_dir is None:
            raise RecipeError("body.model 'smpl' needs body.smpl_model_dir (SMPL files are never shipped)",
                              hint="set body.smpl_model_dir to the folder holding SMPL_NEUTRAL.pkl")
        return SMPLBody(smpl_model_dir, gender=gender, betas=None if shape is None else list(shape))
    raise RecipeError(f"body.model: unknown body model {model!r}; known: anny, smpl", hint="write body.model: anny")


__all__ = [
    "ANNY_TO_WORLD",
    "AnnyBody",
    "BodyModel",
    "BodyOutput",
    "SMPLBody",
    "SMPL_PARENTS",
    "ShapeValues",
    "load_body_model",
    "openpose18_from_coco17",
    "shape_batch",
]
