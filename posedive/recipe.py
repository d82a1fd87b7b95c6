"""Recipes: the Pydantic-validated YAML description of one release.

A recipe is pure data. Validators check types, ranges and consistency but never touch the file
system; ``check_paths`` (used by ``posedive validate`` and the builder) is the one place that looks
at the disk. Relative paths are relative to the recipe file, so a recipe and its data travel together.

The recipe hash is the sha256 of the canonical JSON of the recipe with ``output.dir`` left out (where
a release is written does not change what it contains), and with fields added since recipes were first
hashed (``FIELDS_ADDED_LATER``) left out while they hold their defaults. It seeds the plan and is stored
in every sample's provenance.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .body.population import PopulationSpec
from .errors import RecipeError
from .pose.keypoints import KEYPOINT_GROUPS
from .pose.registry import check_estimator_name
from .schema import COCO17_KEYPOINTS, CONDITION_MAPS, GENERATOR_FAMILIES
from .storage import is_url
from .yamlfile import parse_yaml

# Fields added after recipes were first hashed, with their defaults: left out of the hash at the default.
FIELDS_ADDED_LATER: dict[tuple[str, str], object] = {
    ("generator", "compile"): False,
    ("generator", "family"): "posedive",
    ("output", "hub_repo"): None,
    ("output", "units_per_chunk"): None,
    ("quality", "reid_encoder"): None,
}

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
HUB_REPO = re.compile(r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")

def check_hub_repo(value: object) -> str:
    """``value`` when it is a Hub dataset repo id ORG/NAME, else ``ValueError`` saying what one looks like."""
    if not isinstance(value, str) or not HUB_REPO.match(value):
        raise ValueError(f"{value!r} is not a Hub dataset repo: must be ORG/NAME (one '/', each part made of "
                         f"letters, digits, '-', '_' or '.'), e.g. my-lab/market1501-posedive")
    return value


NUMBER_TYPE = "number_type"  # the error type of a number written as something else


def _numeric_kind(annotation: object) -> type | None:
    """``int`` or ``float`` when a field holds numbers (also optional ones and lists of them), else None."""
    if annotation in (int, float):
        return annotation  # type: ignore[return-value]
    for argument in get_args(annotation):
        kind = _numeric_kind(argument)
        if kind is not None:
            return kind
    return None


class _Strict(BaseModel):
    """Unknown fields are errors, and numbers must be written as numbers: YAML's ``true`` or ``"8"`` is
    not silently taken for 1 or 8 (Pydantic's lax mode would). Frozen: a recipe's hash is computed once
    and names what the recipe says, so what it says cannot change afterwards (``model_copy(update=...)``
    makes a changed recipe)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        for name, value in data.items():
            field = cls.model_fields.get(name)
            kind = None if field is None else _numeric_kind(field.annotation)
            if kind is None:
                continue
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, (bool, str)) or (kind is int and isinstance(item, float)):
                    expected = "an integer" if kind is int else "a number"
                    raise PydanticCustomError(NUMBER_TYPE, "must be {expected}, got {item} ({kind})",
                                              {"name": name, "expected": expected, "item": repr(item),
                                               "kind": type(item).__name__})
        return data


# ----------------------------------------------------------------------------------------- sources
class Market1501Source(_Strict):
    format: Literal["market1501"]
    root: Path


class MSMT17Source(_Strict):
    format: Literal["msmt17"]
    root: Path
    version: Literal["V1", "V2"] = "V2"
    val_in_train: bool = Field(True, description="add list_val.txt to the training split, as is customary")


class CUHK03Source(_Strict):
    format: Literal["cuhk03"]
    root: Path
    variant: Literal["labeled", "detected"] = "labeled"


class FolderSource(_Strict):
    format: Literal["folder"]
    root: Path
    camid: int = Field(0, ge=0, description="camera id given to every image (a folder has none)")


SourceConfig = Annotated[
    Union[Market1501Source, MSMT17Source, CUHK03Source, FolderSource], Field(discriminator="format")
]


# ------------------------------------------------------------------------------------ the sampling
def _range(value: list[float], low: float, high: float, what: str) -> list[float]:
    if len(value) != 2:
        raise ValueError(f"{what} must be [min, max]")
    lo, hi = value
    if not (low <= lo <= hi <= high):
        raise ValueError(f"{what} must satisfy {low} <= min <= max <= {high}, got {value}")
    return value


class ViewpointConfig(_Strict):
    elevation_deg: list[float] = Field(default_factory=lambda: [0.0, 30.0])
    azimuth_deg: list[float] = Field(default_factory=lambda: [0.0, 360.0])
    fov_deg: float = Field(30.0, gt=1, lt=120, description="vertical field of view of the virtual camera")

    @field_validator("elevation_deg")
    @classmethod
    def _elevation(cls, v: list[float]) -> list[float]:
        return _range(v, -90.0, 90.0, "elevation_deg")

    @field_validator("azimuth_deg")
    @classmethod
    def _azimuth(cls, v: list[float]) -> list[float]:
        return _range(v, -360.0, 720.0, "azimuth_deg")


# -------------------------------------------------------------------------------------- poses
# The only bank name the old ``poses.source`` string could name; any other string was a file path.
LEGACY_BUILTIN_BANK = "deepmimic"
# A pose whose torso leans further from vertical than this is not upright (walking leans ~2-5 deg,
# running ~25 deg): the default limit, and the limit of a bank's ``upright`` tag.
UPRIGHT_TORSO_TILT_DEG = 30.0
# Hips lower than this fraction of their standing height over the lower foot are a crouch (a jump's
# take-off, a fighting stance); running bends the knees to ~0.82, walking to ~0.94.
UPRIGHT_MIN_HIP_HEIGHT = 0.8
# Upright frames of flips, cartwheels, rolls, crawls and get-ups are crouches and leaps mid-stunt:
# nothing a pedestrian does, so they are left out unless a recipe says otherwise.
DEFAULT_EXCLUDED_TAGS = ("acrobatics", "floor")
UpAxis = Literal["y", "z", "-y"]


class PoseSource(_Strict):
    """Which of a bank's poses a build draws from: clips and tags to keep or drop, then limits on the
    posed skeleton. The defaults keep upright poses, stunts left out."""

    include: list[str] = Field(default_factory=list, description="keep only poses whose clip or one of whose "
                               "tags is listed (empty: every pose)")
    exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDED_TAGS), description="drop poses whose "
                               "clip or one of whose tags is listed (a list given here replaces the default)")
    max_torso_tilt_deg: float | None = Field(UPRIGHT_TORSO_TILT_DEG, ge=0, le=180, description="largest angle "
                                             "between pelvis-to-neck and vertical; null: no limit")
    feet_below_hips: bool = Field(True, description="keep only poses with both feet below the hips")
    head_above_pelvis: bool = Field(True, description="keep only poses with the head above the pelvis")
    min_hip_height: float | None = Field(UPRIGHT_MIN_HIP_HEIGHT, ge=0, le=2, description="smallest height of "
                                         "the hips over the lower foot, as a fraction of their standing height "
                                         "(leaves out crouches); null: no limit")
    sampling: Literal["uniform"] = "uniform"

    def keeps_every_pose(self) -> bool:
        return (not self.include and not self.exclude and self.max_torso_tilt_deg is None
                and not self.feet_below_hips and not self.head_above_pelvis and self.min_hip_height is None)

    def describe_bank(self) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        """The bank and the selection in words, as a release card shows them."""
        if self.keeps_every_pose():
            return f"{self.describe_bank()}, every pose"
        limits = [f"the torso within {self.max_torso_tilt_deg:g} deg of vertical"] if self.max_torso_tilt_deg is not None else []
        limits += ["both feet below the hips"] if self.feet_below_hips else []
        limits += ["the head above the pelvis"] if self.head_above_pelvis else []
        limits += [f"the hips at least {self.min_hip_height:g} of their standing height"] if self.min_hip_height is not None else []
        words = [self.describe_bank()]
        words += [f"only {_listed(self.include)}"] if self.include else []
        words += [f"poses with {_listed(limits)}"] if limits else []
        words += [f"leaving out {_listed(self.exclude)}"] if self.exclude else []
        return ", ".join(words)


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


class BuiltinPoses(PoseSource):
    """A bank built into posedive (built once, cached under posedive's cache folder)."""

    kind: Literal["builtin"] = "builtin"
    name: Literal["pedestrian", "deepmimic"] = Field("pedestrian", description="which built-in bank: pedestrian "
                                                     "(deepmimic plus standing and walking variations) or deepmimic")

    def describe_bank(self) -> str:
        return f"built-in bank `{self.name}`"


class FilePoses(PoseSource):
    """A posedive pose bank (``.npz``), e.g. written by ``posedive posebank build``."""

    kind: Literal["file"]
    path: str = Field(description="the bank file; relative paths are relative to the recipe")

    def describe_bank(self) -> str:
        return f"bank file `{self.path}`"


class ImportedPoses(PoseSource):
    """Poses imported at build time from the user's files; the bank is cached under posedive's cache
    folder by the content of the files and the options, so it is imported once."""

    paths: list[Path] = Field(min_length=1, description="input files or folders")
    licence: str | None = Field(None, description="licence recorded with every pose (default: the importer's)")
    mirror: bool = Field(True, description="add left-right mirrored poses")
    dedup_m: float | None = Field(None, ge=0, description="drop poses within this mean joint distance (m) of a kept "
                                  "one (default 0.03; 0 keeps all)")

    def describe_bank(self) -> str:
        return f"poses imported with `{self.kind}` from {', '.join(f'`{p.name}`' for p in self.paths)}"

    def importer_options(self) -> dict[str, object]:
        """The options the importer itself takes, where the recipe sets them."""
        shared = set(type(self).model_fields) - set(ImportedPoses.model_fields) - {"kind"}
        values = {"licence": self.licence, **{name: getattr(self, name) for name in shared}}
        return {name: value for name, value in values.items() if value is not None}


class _MotionSequences(ImportedPoses):
    every: int | None = Field(None, ge=1, description="keep every N-th frame (default: the importer's)")
    up: UpAxis | None = Field(None, description="the inputs' up axis (default: the importer's)")


class AmassPoses(_MotionSequences):
    kind: Literal["amass"]


class FitsPoses(_MotionSequences):
    kind: Literal["fits"]


class BvhPoses(_MotionSequences):
    kind: Literal["bvh"]


class ImagesPoses(ImportedPoses):
    """People in photographs, folders of them or fixed-camera videos, fitted with the body fitter."""

    kind: Literal["images"]


PosesConfig = Annotated[
    Union[BuiltinPoses, FilePoses, AmassPoses, FitsPoses, BvhPoses, ImagesPoses], Field(discriminator="kind")
]


def _poses_section(value: object) -> object:
    """Recipes written before ``poses.kind`` named their bank with ``source`` (a built-in name or a
    bank file) and drew from all its poses; they mean the same bank as ``kind: builtin`` / ``kind:
    file`` with no selection. Without ``kind`` or ``source`` the section describes the built-in bank."""
    if not isinstance(value, dict) or "kind" in value:
        return value
    if "source" not in value:
        return {"kind": "builtin", **value}
    others = sorted(set(value) - {"source", "sampling"})
    if others:
        raise ValueError(f"`source` (the old way to name a pose bank) takes no {others}: write `kind: builtin` "
                         "with `name`, or `kind: file` with `path` (see the recipe reference in README.md)")
    # Old recipes drew from every pose of the bank.
    rest = {key: item for key, item in value.items() if key != "source"}
    rest.update(exclude=[], max_torso_tilt_deg=None, feet_below_hips=False, head_above_pelvis=False,
                min_hip_height=None)
    if value["source"] == LEGACY_BUILTIN_BANK:
        return {"kind": "builtin", "name": LEGACY_BUILTIN_BANK, **rest}
    return {"kind": "file", "path": value["source"], **rest}


def _hashed_poses(poses: PoseSource, dumped: dict) -> dict:
    """The ``poses`` section as the hash sees it: a bank an old recipe could name, drawn from whole,
    hashes as the old ``source`` form, so a recipe written before ``poses.kind`` keeps its hash."""
    if not poses.keeps_every_pose():
        return dumped
    if isinstance(poses, BuiltinPoses) and poses.name == LEGACY_BUILTIN_BANK:
        return {"sampling": poses.sampling, "source": poses.name}
    if isinstance(poses, FilePoses) and poses.path != LEGACY_BUILTIN_BANK:
        return {"sampling": poses.sampling, "source": poses.path}
    return dumped


BodyShapeMode = Literal["fixed", "sampled", "reference"]


class ShapeFitOptions(_Strict):
    """How ``body.shape: reference`` fits an identity's body to its reference images."""

    min_confidence: float = Field(0.2, ge=0, le=1, description="an identity whose fit is less confident than this "
                                  "gets a body drawn from the population instead, and its samples say so")
    parameters: list[str] | None = Field(None, description="shape values fitted to the images, the others staying at "
                                         "the population mean (default: anny's gender, weight and height; every "
                                         "SMPL beta)")
    population: PopulationSpec = Field(default_factory=PopulationSpec, description="the people fallback and "
                                       "`sampled` bodies are drawn from, and the fit's prior")


class BodyConfig(_Strict):
    model: Literal["anny", "smpl"] = "anny"
    smpl_model_dir: Path | None = Field(None, description="folder with the user's SMPL model files")
    gender: Literal["neutral", "male", "female"] = Field("neutral", description="the body of `shape: fixed`")
    shape: BodyShapeMode = Field("reference", description="each identity's body: fitted to its reference images "
                                 "(reference), drawn from the population (sampled), or one body for all (fixed)")
    shape_fit: ShapeFitOptions = Field(default_factory=ShapeFitOptions)

    @model_validator(mode="after")
    def _smpl_needs_files(self) -> "BodyConfig":
        if self.model == "smpl" and self.smpl_model_dir is None:
            raise ValueError("body.model 'smpl' needs body.smpl_model_dir (SMPL files are never shipped)")
        if self.gender != "neutral" and self.shape != "fixed":
            raise ValueError(f"body.gender {self.gender!r} sets the one body of `shape: fixed`; with shape "
                             f"{self.shape!r} each identity has its own gender (write `shape: fixed` to keep it)")
        return self


def _hashed_body(body: BodyConfig, dumped: dict) -> dict:
    """The ``body`` section as the hash sees it: ``shape: fixed`` with the default fit options is the
    one body every recipe rendered before ``shape`` existed, so it hashes as the section did then.
    A recipe that does not name ``shape`` now fits each identity's body (a different release), and
    its hash changes with it."""
    if body.shape != "fixed" or body.shape_fit != ShapeFitOptions():
        return dumped
    return {key: value for key, value in dumped.items() if key not in ("shape", "shape_fit")}


def _keypoint_names(value: str | list[str]) -> list[str]:
    if isinstance(value, str):
        if value not in KEYPOINT_GROUPS:
            raise ValueError(f"unknown keypoint group {value!r}; groups: {sorted(KEYPOINT_GROUPS)}")
        return list(KEYPOINT_GROUPS[value])
    unknown = [name for name in value if name not in COCO17_KEYPOINTS]
    if unknown or not value:
        raise ValueError(f"unknown COCO-17 keypoints {unknown}; valid: {list(COCO17_KEYPOINTS)}")
    return list(value)


KeypointSubset = str | list[str]


class FilterConfig(_Strict):
    """Thresholds of supplementary section 5 (eqs. 10-13). 0.6 is the paper's best threshold."""

    tau_ref: float = Field(0.6, ge=0, le=1, description="eq. 10: min reference confidence")
    tau_tar: float = Field(0.6, ge=0, le=1, description="eq. 11: mean target confidence")
    eps_gen: float = Field(0.2, ge=0, le=1, description="eq. 12-13: max mean |conf_gen - conf_tar|")
    tau_gen: float = Field(0.6, ge=0, le=1, description="eq. 13: mean generated confidence")
    reference_keypoints: KeypointSubset = "major_joints"
    target_keypoints: KeypointSubset = "all"
    generated_keypoints: KeypointSubset = "all"
    estimator: str = Field("blazepose", description="a pose estimator of posedive.pose.registry")

    @field_validator("reference_keypoints", "target_keypoints", "generated_keypoints")
    @classmethod
    def _subset(cls, v: str | list[str]) -> str | list[str]:
        _keypoint_names(v)
        return v

    @field_validator("estimator")
    @classmethod
    def _estimator(cls, v: str) -> str:
        return check_estimator_name(v)

    def indices(self, which: Literal["reference", "target", "generated"]) -> list[int]:
        names = _keypoint_names(getattr(self, f"{which}_keypoints"))
        return [COCO17_KEYPOINTS.index(name) for name in names]


class GeneratorConfig(_Strict):
    weights: str = Field(description="Hub id or local path of a posedive generator checkpoint")
    family: Literal[GENERATOR_FAMILIES] = Field(  # type: ignore[valid-type]
        "posedive", description="the generator family the weights belong to (checked against the checkpoint)"
    )
    revision: str | None = Field(None, description="Hub revision (commit, tag or branch)")
    steps: int = Field(25, ge=1, le=1000)
    guidance_scale: float = Field(3.5, ge=0)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    batch_size: int = Field(4, ge=1)
    width: int = Field(192, ge=8, multiple_of=8)
    height: int = Field(384, ge=8, multiple_of=8)
    device: str = Field("auto", description="auto picks cuda when available, else cpu")
    compile: bool = Field(
        False, description="torch.compile the denoising U-Net: faster batches on a GPU after a one-off compilation"
    )

    def is_local(self, base_dir: Path) -> bool:
        candidate = Path(self.weights)
        return candidate.is_absolute() or self.weights.startswith((".", "/")) or (base_dir / candidate).exists()


class QualityConfig(_Strict):
    """What the quality report measures beyond the filter and the generator's own identity encoder."""

    reid_encoder: str | None = Field(
        None, description="a TransReID encoder (a released transformer_20.pth, a posedive TransReID or identity-encoder "
        "folder, or a Hub id ORG/NAME@REVISION of one): every sample then also records the cosine of its and its "
        "reference's Re-ID features; null: none")

    @field_validator("reid_encoder")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or v.startswith("@") or v.endswith("@")):
            raise ValueError("must be PATH or HUB_ID[@REVISION], e.g. yuanc3/Pose2ID@<commit>")
        return v


class OutputConfig(_Strict):
    # A local folder, or an fsspec URL (``s3://bucket/releases``) that workers write shards to directly.
    dir: Path | str = Path("releases")
    samples_per_shard: int = Field(1000, ge=1)
    units_per_chunk: int | None = Field(None, ge=1, description="work units per chunk: a shard's units are "
                                        "built in chunks of this many, each by any worker, and the shard is "
                                        "assembled from them; null: a shard is one chunk")
    condition_maps: list[Literal["depth", "normal", "skeleton", "semantic_map"]] = Field(
        default_factory=lambda: list(CONDITION_MAPS),
        description="the maps stored beside each image; semantic_map (Champ's part colours) is rendered "
                    "only when listed here or read by the generator",
    )
    image_format: Literal["jpg", "png"] = "jpg"
    hub_repo: str | None = Field(None, description="dataset repo ORG/NAME the release is published to: the card's "
                                 "loading examples name it, and `posedive push` uses it when --repo is not given")

    @field_validator("dir")
    @classmethod
    def _path_unless_url(cls, value: Path | str) -> Path | str:
        return value if isinstance(value, Path) or is_url(value) else Path(value)

    @field_validator("condition_maps")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("condition_maps lists a map twice")
        return v

    @field_validator("hub_repo")
    @classmethod
    def _hub_repo(cls, v: str | None) -> str | None:
        return None if v is None else check_hub_repo(v)


class Recipe(_Strict):
    name: str = Field(description="release name: lowercase letters, digits, '_' and '-'")
    version: str = Field(description="semantic version, e.g. 1.0.0")
    seed: int = 0
    source: SourceConfig
    viewpoint: ViewpointConfig = Field(default_factory=ViewpointConfig)
    poses: PosesConfig = Field(default_factory=BuiltinPoses)
    body: BodyConfig = Field(default_factory=BodyConfig)
    images_per_pid: int = Field(15, ge=1, description="supplementary 4: 15 images per identity")
    max_attempts_per_image: int = Field(4, ge=1)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    generator: GeneratorConfig
    output: OutputConfig = Field(default_factory=OutputConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source_file: Path | None = PrivateAttr(default=None)
    _hash: str | None = PrivateAttr(default=None)

    @field_validator("poses", mode="before")
    @classmethod
    def _poses(cls, v: object) -> object:
        return _poses_section(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError("must be lowercase letters, digits, '_' or '-', starting with a letter or digit")
        return v

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str) -> str:
        if not SEMVER.match(v):
            raise ValueError("must be a semantic version MAJOR.MINOR.PATCH, e.g. 1.0.0")
        return v

    # ----------------------------------------------------------------------------- paths and hash
    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def source_file(self) -> Path | None:
        return self._source_file

    def resolve(self, path: Path | str) -> Path:
        """An absolute path as given; a relative one resolved against the recipe's folder, so that what
        posedive prints reads ``/data/releases``, not ``/data/recipes/../releases``."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else (self._base_dir / path).resolve()

    @property
    def release_dir(self) -> Path:
        """The release's local folder; for a remote release (``output.dir`` a URL), a local folder under
        the recipe's folder for what the driver keeps here (coverage reports); its build state (lock,
        claims) lives in the store beside the release."""
        if is_url(self.output.dir):
            return self._base_dir / ".posedive-remote" / _url_folder(str(self.output.dir)) / self.name / self.version
        return self.resolve(self.output.dir) / self.name / self.version

    @property
    def release_location(self) -> str:
        """Where the release's files live: its local folder, or ``<output.dir URL>/<name>/<version>``."""
        if is_url(self.output.dir):
            return f"{str(self.output.dir).rstrip('/')}/{self.name}/{self.version}"
        return str(self.release_dir)

    def canonical_json(self) -> str:
        data = self.model_dump(mode="json")
        data["output"].pop("dir")
        data["poses"] = _hashed_poses(self.poses, data["poses"])
        data["body"] = _hashed_body(self.body, data["body"])
        for (section, field), default in FIELDS_ADDED_LATER.items():
            if data[section][field] == default:  # a recipe written before the field existed keeps its hash
                data[section].pop(field)
        if not data["quality"]:  # a section added later, all at its defaults
            data.pop("quality")
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        # Planning asks for it once per attempt (45k times for Market-1501): computed once per recipe.
        if self._hash is None:
            self._hash = hashlib.sha256(self.canonical_json().encode()).hexdigest()
        return self._hash

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "Recipe":
        """A copy (with ``update`` applied), whose hash is computed afresh."""
        copy = super().model_copy(update=update, deep=deep)
        copy._hash = None
        return copy

    def with_base_dir(self, base_dir: Path) -> "Recipe":
        self._base_dir = Path(base_dir)
        return self

    # ------------------------------------------------------------------------------ disk checks
    def check_paths(self) -> list[str]:
        """Everything the recipe points at that does not exist, as messages naming the field."""
        problems: list[str] = []
        root = self.resolve(self.source.root)
        if not root.is_dir():
            problems.append(f"source.root: folder {root} does not exist")
        if self.body.model == "smpl" and self.body.smpl_model_dir is not None:
            smpl_dir = self.resolve(self.body.smpl_model_dir)
            if not smpl_dir.is_dir():
                problems.append(f"body.smpl_model_dir: folder {smpl_dir} does not exist")
        if isinstance(self.poses, FilePoses) and not self.resolve(self.poses.path).is_file():
            problems.append(f"poses: pose bank {self.resolve(self.poses.path)} does not exist")
        if isinstance(self.poses, ImportedPoses):
            for index, path in enumerate(self.poses.paths):
                if not self.resolve(path).exists():
                    problems.append(f"poses.paths[{index}]: {self.resolve(path)} does not exist")
        if self.generator.is_local(self._base_dir) and not self.resolve(self.generator.weights).exists():
            problems.append(f"generator.weights: {self.resolve(self.generator.weights)} does not exist")
        reid = self.quality.reid_encoder
        if reid is not None and reid.startswith((".", "/", "~")) and not self.resolve(reid).exists():
            problems.append(f"quality.reid_encoder: {self.resolve(reid)} does not exist")
        return problems


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid recipe ({error.error_count()} problem(s))"]
    for item in error.errors():
        loc = list(item["loc"])
        if item["type"] == NUMBER_TYPE:  # raised for the whole section: name the field itself
            loc.append(item["ctx"]["name"])
        location = ".".join(str(part) for part in loc) or "<root>"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field (check its spelling; see the recipe reference in README.md)"
        elif item["type"] == "missing":
            message = "required field is missing"
        lines.append(f"  {location}: {message}")
    return "\n".join(lines)


def parse_recipe(data: object, *, source: str = "<recipe>", base_dir: Path | None = None) -> Recipe:
    """Validate already-parsed YAML/JSON data; errors name ``source`` and every bad field path."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping at the top level, got {type(data).__name__}")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as error:
        raise RecipeError(_format_validation_error(source, error)) from None
    return recipe.with_base_dir(base_dir or Path.cwd())


def load_recipe(path: Path | str) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    data = parse_yaml(path.read_text(), str(path), RecipeError)
    recipe = parse_recipe(data, source=str(path), base_dir=path.resolve().parent)
    recipe._source_file = path.resolve()
    return recipe


def _url_folder(url: str) -> str:
    """A folder name for a URL: readable, and distinct per URL."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", url)[:60]
    return f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"
