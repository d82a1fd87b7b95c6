"""Typed objects that cross stage boundaries, and the protocols each stage implements.

Data flows one way: recipe -> plan -> conditions -> generation -> filtering -> shards -> release -> hub.
Stages only exchange the objects defined here, so a stage can be replaced (a different body model,
pose estimator or generator) without touching its neighbours.

Conventions used everywhere in posedive:

* Images are ``uint8`` arrays in HWC RGB order (or PIL images at the generator boundary), sized
  ``width x height`` as the recipe says (192x384 by default).
* Cameras follow OpenCV: ``x_cam = R @ x_world + t``, x right, y down, z forward; pixels
  ``u = K @ x_cam``. World coordinates are the body model's, in metres, y up, the body facing +z.
* 2D keypoints are ``(K, 3)`` float arrays of ``x, y, confidence`` in pixels. posedive's canonical
  keypoint set is COCO-17 (see ``COCO17_KEYPOINTS``); skeleton images are drawn in OpenPose-18 order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

COCO17_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

OPENPOSE18_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)

CONDITION_MAPS: tuple[str, ...] = ("depth", "normal", "skeleton")
# Every map the conditions stage can render: its own three always, the semantic map on request.
RENDERABLE_MAPS: tuple[str, ...] = (*CONDITION_MAPS, "semantic_map")
# Generator families: posedive's own two-branch generator and the released relatives it converts
# (posedive.generation.families defines each; a recipe names one in generator.family).
GENERATOR_FAMILIES: tuple[str, ...] = ("posedive", "pose2id", "animate-anyone", "champ")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Camera(_Frozen):
    """A pinhole camera looking at the body centre (OpenCV convention, world -> camera)."""

    elevation_deg: float
    azimuth_deg: float
    distance_m: float
    fov_deg: float = Field(description="vertical field of view")
    width: int
    height: int
    K: list[list[float]] = Field(description="3x3 intrinsics")
    R: list[list[float]] = Field(description="3x3 rotation, world to camera")
    t: list[float] = Field(description="translation, world to camera, metres")


class BodyParams(_Frozen):
    """The parametric body that was rendered: SMPL-24 axis-angle pose (72 values, global orientation
    first) and shape coefficients of the named body model."""

    model: str
    pose_id: str
    pose: list[float] = Field(min_length=72, max_length=72)
    shape: list[float] = Field(default_factory=list)
    pose_tags: list[str] = Field(default_factory=list, description="the pose's tags in its bank (walk, upright, ...)")


@dataclass(frozen=True)
class ConditionSet:
    """One entry of the target condition gallery: what the generator is conditioned on."""

    condition_id: str
    depth: np.ndarray  # (H, W) uint8
    normal: np.ndarray  # (H, W, 3) uint8, camera-frame normals encoded as RGB
    skeleton: np.ndarray  # (H, W, 3) uint8, OpenPose-18 style drawing
    keypoints_2d: np.ndarray  # (18, 3) projected OpenPose-18 joints: x, y, in-image flag
    camera: Camera
    body: BodyParams
    # Maps in other families' forms, rendered only when asked for (``semantic_map``: (H, W, 3) uint8
    # part colours; ``depth_champ``: (H, W, 3) uint8), keyed as ``posedive.generation.contract`` reads them.
    forms: Mapping[str, np.ndarray] = field(default_factory=dict)

    def maps(self, names: Sequence[str] = CONDITION_MAPS) -> dict[str, np.ndarray]:
        """The maps ``names``: posedive's own or forms this set was rendered with (KeyError otherwise)."""
        out = {}
        for name in names:
            if name in CONDITION_MAPS:
                out[name] = getattr(self, name)
            elif name in self.forms:
                out[name] = self.forms[name]
            else:
                raise KeyError(f"condition set {self.condition_id} was rendered without the {name!r} map "
                               f"(it has {', '.join((*CONDITION_MAPS, *self.forms))})")
        return out


@dataclass(frozen=True)
class ImageGroup:
    """Images of people that belong together, as readers hand them to the stages that use them.

    Image readers and the video package produce groups (a file or a folder of images: loose images;
    a clean track of a fixed-camera video: a ``sequence``, consecutive frames of one person, in order);
    body fitting and the pose-bank importer consume them, so neither depends on where images come
    from. ``sources[i]`` says where ``images[i]`` came from (a path relative to the folder read, or
    ``<video>#track<id>@frame<n>``); images are RGB uint8 (H, W, 3). A dataclass, as ``ConditionSet``
    is: it carries arrays between functions of one process and is never written to disk.
    """

    name: str
    sources: list[str]
    images: list[np.ndarray]
    sequence: bool

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.images):
            raise ValueError(f"image group {self.name!r}: {len(self.sources)} sources for {len(self.images)} images")

    def batches(self, size: int) -> Iterator["ImageGroup"]:
        """Consecutive slices of at most ``size`` images, each with this group's name and kind."""
        if size < 1:
            raise ValueError(f"batch size must be >= 1, got {size}")
        for start in range(0, len(self.images), size):
            yield ImageGroup(self.name, self.sources[start : start + size], self.images[start : start + size],
                             self.sequence)


@dataclass(frozen=True)
class ConditionRequest:
    """What the plan asks the conditions stage to render."""

    pose_id: str
    elevation_deg: float
    azimuth_deg: float
    # The body's shape values (the body model's ``shape_labels``); None: the renderer's own body.
    shape: tuple[float, ...] | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """One image to generate: the identity comes from ``reference``, the pose and viewpoint from
    ``conditions``, the noise from ``seed`` alone (never from the batch it lands in)."""

    reference: Image.Image
    conditions: ConditionSet
    seed: int


class GeneratorInfo(_Frozen):
    """Identifies the weights that made an image; stored in every sample's provenance."""

    id: str = Field(description="Hub id or local path as given in the recipe")
    revision: str | None = None
    sha256: str = Field(description="hash of the weight files, so two checkpoints never share an id")
    description: str = Field(description="what the model is and how it was trained, shown on the card")
    conditions: str | None = Field(
        None, description="the condition contract it was trained on: maps and encodings, guider layout, resolution"
    )
    family: str = Field("posedive", description="the generator family of its condition contract")
    condition_maps: tuple[str, ...] = Field(
        (), description="its contract's maps in channel order, each as map/encoding (depth/champ)"
    )


class IdentitySimilarity(_Frozen):
    """How much a generated image looks like its reference to an identity encoder: the generator's own
    (provenance ``identity``) or the recipe's Re-ID encoder (``reid_identity``)."""

    encoder: str = Field(description="the identity encoder's kind, e.g. clip-image-embedding")
    cosine: float = Field(description="cosine of the encoder's features of the generated image and of its reference")


@runtime_checkable
class IdentityFeatures(Protocol):
    """A generator that can describe images with its identity encoder (already loaded to generate)."""

    identity_encoder: str

    def identity_features(self, images: Sequence[Image.Image]) -> np.ndarray: ...


@runtime_checkable
class ConditionRenderer(Protocol):
    """Renders depth / normal / skeleton maps for planned (pose, camera) pairs."""

    def pose_ids(self) -> list[str]: ...

    def render(self, requests: Sequence[ConditionRequest]) -> list[ConditionSet]: ...


@runtime_checkable
class Generator(Protocol):
    """A batch of (reference image, condition maps, seed) in, one image per request out."""

    info: GeneratorInfo

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]: ...
