"""The condition contract of a generator: which maps its pose guider reads, in what form, at what size.

A generator is trained on condition maps of one kind and breaks quietly on any other: a skeleton in
BGR where it learnt RGB, a depth map where it expects a semantic map, 256x128 images from a model
trained at 192x384. The contract states what the weights were trained on, so it travels with them
(saved in the pose guider's config, ``pose_guider/config.json`` key ``conditions``, as ControlNet
saves its conditioning settings) and is checked against a recipe before anything is built:

* ``maps``: the maps in channel order, each a rendered map (``name``: what the conditions stage
  renders, e.g. ``depth``) in one ``encoding`` with its channel count;
* ``guiders``: ``concatenated`` (the maps stacked into one tensor for one pose guider, paper eq. 7)
  or ``per_map`` (one pose guider per map, their outputs summed, as Champ's guidance encoders);
* ``resolution``: the ``(width, height)`` the model was trained at; ``None`` when unknown;
* ``family``: the generator family (``posedive.schema.GENERATOR_FAMILIES``) the weights belong to,
  which a recipe's ``generator.family`` must name.

The generation stage makes each encoding from the maps the conditions stage renders
(``MAP_ENCODINGS``); a contract naming any other map or encoding cannot be served by this posedive,
and the check says which. Checkpoints saved before contracts existed imply posedive's own three maps
on one guider (``implied_contract``).
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .. import formats
from ..errors import CheckpointError
from ..schema import GENERATOR_FAMILIES

CONTRACT_VERSION = formats.CONDITION_CONTRACT.version

GuiderLayout = Literal["concatenated", "per_map"]
GUIDER_LAYOUTS: dict[str, str] = {
    "concatenated": "one pose guider on the concatenated maps",
    "per_map": "one pose guider per map, outputs summed",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MapEncoding(_Frozen):
    """One form of a rendered map that the generation stage can hand to a pose guider."""

    map: str = Field(description="the rendered map it is made from (a field of posedive.schema.ConditionSet)")
    encoding: str
    channels: int
    channel_order: tuple[int, ...] | None = Field(
        None, description="the rendered map's channels in this order (None: as rendered)"
    )
    source: str | None = Field(
        None, description="the key of a sample's maps this form is read from, when it is not the rendered map itself"
    )
    description: str


# Forms drawn from a condition set's projected keypoints rather than read from a rendered map.
DWPOSE_SOURCE = "skeleton_dwpose"
# Forms the conditions stage renders only when a contract (or the recipe's stored maps) asks for them
# (``posedive.schema.ConditionSet.forms``): Champ's depth encoding and its semantic map.
CHAMP_DEPTH_SOURCE = "depth_champ"
SEMANTIC_MAP = "semantic_map"
RENDERED_ON_REQUEST: tuple[str, ...] = (CHAMP_DEPTH_SOURCE, SEMANTIC_MAP)
# Every map a contract can read beyond posedive's own three (depth, normal, skeleton): what a training pair
# stores, under these names, for a generator of another family (``posedive.generation.data.PAIR_FORMS``).
EXTRA_FORMS: tuple[str, ...] = (*RENDERED_ON_REQUEST, DWPOSE_SOURCE)


def _encodings(*items: MapEncoding) -> dict[tuple[str, str], MapEncoding]:
    return {(item.map, item.encoding): item for item in items}


# What posedive's conditions stage renders (posedive.conditions.render), and the forms made from it.
MAP_ENCODINGS: dict[tuple[str, str], MapEncoding] = _encodings(
    MapEncoding(map="depth", encoding="near-bright", channels=1,
                description="8-bit grey, background 0, per-image normalised inverse depth, nearest surface 255"),
    MapEncoding(map="normal", encoding="camera-opengl", channels=3,
                description="camera-frame unit normals (x right, y up, z to the viewer) as RGB round((n + 1) / 2 * 255)"),
    MapEncoding(map="skeleton", encoding="openpose18-rgb", channels=3,
                description="OpenPose-18 limbs and joints in OpenPose's colours on black, RGB"),
    MapEncoding(map="skeleton", encoding="openpose18-bgr", channels=3, channel_order=(2, 1, 0),
                description="the same drawing with its channels in BGR order (models trained on images read by OpenCV)"),
    MapEncoding(map="skeleton", encoding="dwpose-rgb", channels=3, source=DWPOSE_SOURCE,
                description="DWPose's body drawing (4 px limbs dimmed to 60 %, 4 px joints, no anti-aliasing) "
                            "of the OpenPose-18 joints on black, RGB; no hands or face"),
    MapEncoding(map="skeleton", encoding="dwpose-bgr", channels=3, source=DWPOSE_SOURCE, channel_order=(2, 1, 0),
                description="DWPose's body drawing with its channels in BGR order"),
    MapEncoding(map="depth", encoding="champ", channels=3, source=CHAMP_DEPTH_SOURCE,
                description="Champ's depth: grey as RGB, per-image normalised depth, nearest surface 255, "
                            "farthest surface and background 0 (posedive.conditions.champ_maps)"),
    MapEncoding(map="normal", encoding="champ", channels=3,
                description="Champ's normal map: camera-frame normals (x right, y up, z to the viewer) as "
                            "RGB round((n + 1) / 2 * 255) on black, the same pixels as camera-opengl"),
    MapEncoding(map=SEMANTIC_MAP, encoding="champ-parts", channels=3,
                description="SMPL's 24 skinning parts of the posed body in Champ's part colours on black, "
                            "one colour per face (posedive.conditions.champ_maps)"),
)


class ConditionMap(_Frozen):
    """One map a pose guider reads: the rendered map ``name`` in ``encoding``, ``channels`` wide."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    encoding: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    channels: int = Field(ge=1)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.encoding}"

    @property
    def form(self) -> MapEncoding | None:
        """How this posedive makes the map, or ``None`` when it cannot."""
        return MAP_ENCODINGS.get((self.name, self.encoding))


def _map(name: str, encoding: str) -> ConditionMap:
    return ConditionMap(name=name, encoding=encoding, channels=MAP_ENCODINGS[(name, encoding)].channels)


POSEDIVE_MAPS: tuple[ConditionMap, ...] = (
    _map("depth", "near-bright"),
    _map("normal", "camera-opengl"),
    _map("skeleton", "openpose18-rgb"),
)


class ConditionContract(_Frozen):
    """What a generator's pose guider(s) were trained on; see the module docstring."""

    version: int = CONTRACT_VERSION
    maps: tuple[ConditionMap, ...] = Field(min_length=1, description="in channel order")
    guiders: GuiderLayout = "concatenated"
    resolution: tuple[int, int] | None = Field(None, description="(width, height) trained at; None: unknown")
    family: str = Field("posedive", description="the generator family of the weights")

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in GENERATOR_FAMILIES:
            raise ValueError(f"generator family {v!r} is not one of {', '.join(GENERATOR_FAMILIES)}: "
                             "upgrade posedive to use this checkpoint")
        return v

    @field_validator("resolution")
    @classmethod
    def _positive(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and min(v) < 1:
            raise ValueError(f"resolution must be a positive (width, height), got {v}")
        return v

    @model_validator(mode="after")
    def _unique_maps(self) -> "ConditionContract":
        names = [m.name for m in self.maps]
        if len(set(names)) != len(names):
            raise ValueError(f"a condition map is listed twice: {names}")
        return self

    @property
    def channels(self) -> int:
        return sum(m.channels for m in self.maps)

    @property
    def map_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.maps)

    def channel_slices(self) -> list[tuple[ConditionMap, slice]]:
        """Each map with its channels in the stacked condition tensor."""
        slices, start = [], 0
        for item in self.maps:
            slices.append((item, slice(start, start + item.channels)))
            start += item.channels
        return slices

    def with_resolution(self, width: int, height: int) -> "ConditionContract":
        return self.model_copy(update={"resolution": (int(width), int(height))})

    def describe(self) -> str:
        """One line naming every part: stored in provenance, printed by ``posedive validate``."""
        maps = " + ".join(f"{m.label} ({m.channels} ch)" for m in self.maps)
        size = "resolution unknown" if self.resolution is None else f"{self.resolution[0]}x{self.resolution[1]}"
        family = "" if self.family == "posedive" else f"; {self.family} family"
        return f"{maps}; {GUIDER_LAYOUTS[self.guiders]}; {size}{family}"

    def to_config(self) -> dict[str, Any]:
        """The JSON form saved in the pose guider's config."""
        return self.model_dump(mode="json")

    @classmethod
    def from_config(cls, value: object, source: str) -> "ConditionContract":
        """Parse a saved contract, its version checked first; ``source`` names the file in the error."""
        formats.check_version(formats.CONDITION_CONTRACT, formats.stated_version(value, "version", default=1), source)
        try:
            return cls.model_validate(value)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in error.errors())
            raise CheckpointError(f"{source}: the condition contract ('conditions') cannot be read: {problems}") from None


POSEDIVE_CONTRACT = ConditionContract(maps=POSEDIVE_MAPS)


def forms_to_render(contract: ConditionContract) -> tuple[str, ...]:
    """The forms of ``RENDERED_ON_REQUEST`` that ``contract``'s maps are read from, in contract order:
    what the conditions stage must render beyond posedive's own maps for this generator."""
    keys = [(m.form.source or m.name) for m in contract.maps if m.form is not None]
    return tuple(key for key in keys if key in RENDERED_ON_REQUEST)


def extra_forms(contract: ConditionContract) -> tuple[str, ...]:
    """The maps of ``EXTRA_FORMS`` that ``contract``'s maps are read from, in contract order: what a
    training pair must hold beyond posedive's own maps for this generator."""
    keys = [(m.form.source or m.name) for m in contract.maps if m.form is not None]
    return tuple(dict.fromkeys(key for key in keys if key in EXTRA_FORMS))


def implied_contract(conditioning_channels: int, resolution: Sequence[int] | None, source: str) -> ConditionContract:
    """The contract of a checkpoint saved without one: posedive's depth + normal + skeleton on one guider
    (the only maps posedive fed its guiders then), at ``resolution`` when known."""
    if conditioning_channels != POSEDIVE_CONTRACT.channels:
        raise CheckpointError(
            f"{source}: the pose guider takes {conditioning_channels} channels and its config names no condition "
            f"contract; a checkpoint without one must take posedive's {POSEDIVE_CONTRACT.channels} "
            f"({POSEDIVE_CONTRACT.describe()})",
            hint="add a 'conditions' entry to the pose guider's config.json describing its maps",
        )
    if resolution is None:
        return POSEDIVE_CONTRACT
    return POSEDIVE_CONTRACT.with_resolution(*resolution)


def contract_problems(
    contract: ConditionContract,
    *,
    width: int,
    height: int,
    provided: Sequence[str],
    generator: str,
    family: str = "posedive",
) -> list[str]:
    """What keeps a recipe (``width x height``, conditions rendering the maps ``provided``, generator
    ``family``) from using a generator with ``contract``; messages name the recipe field and both values."""
    problems: list[str] = []
    if contract.family != family:
        problems.append(
            f"generator.family: the recipe names the {family} family but generator {generator} is a "
            f"{contract.family} generator (set family: {contract.family})"
        )
    if contract.resolution is not None and tuple(contract.resolution) != (width, height):
        trained_w, trained_h = contract.resolution
        problems.append(
            f"generator.width/height: the recipe asks for {width}x{height} but generator {generator} was trained "
            f"at {trained_w}x{trained_h} (set width: {trained_w} and height: {trained_h})"
        )
    unserved = [m for m in contract.maps if m.name not in provided or m.form is None or m.form.channels != m.channels]
    if unserved:
        offered = ", ".join(f"{form.map}/{form.encoding} ({form.channels} ch)"
                            for form in MAP_ENCODINGS.values() if form.map in provided)
        problems.append(
            f"generator.weights: generator {generator} takes the maps "
            f"{', '.join(f'{m.label} ({m.channels} ch)' for m in contract.maps)} but the recipe's conditions "
            f"provide {offered}; {', '.join(m.label for m in unserved)} cannot be made"
        )
    return problems
