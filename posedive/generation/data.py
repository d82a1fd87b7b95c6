"""The generator's training data: a WebDataset of identity pairs with the target's condition maps.

This module is the contract between whatever makes training pairs (``posedive pairs`` on a video, a
Re-ID dataset reader, a user's own script) and ``posedive train-generator``. Import
:class:`PairWriter` to write pairs and :func:`iter_pairs` (or :class:`PairsDataset`) to read them.

Format (``PAIRS_FORMAT_VERSION`` = 1)
-------------------------------------
Plain POSIX tar files (``pairs-000000.tar``, ``pairs-000001.tar``, ...), one sample per pair. All files
of a sample share the key; keys contain no dots (WebDataset splits the key at the first dot of the
basename). Every sample holds exactly these members:

==================  ==========================================================================
``KEY.reference.jpg``  the identity image: RGB, any size (it is resized when training)
``KEY.target.jpg``     the image to generate: RGB, ``W x H``, another image of the same person
``KEY.depth.png``      the target's depth map: 8-bit grey ``W x H``, near = bright, background 0
``KEY.normal.png``     the target's camera-frame normals: 8-bit RGB ``W x H``, ``(n + 1) / 2 * 255``
``KEY.skeleton.png``   the target's OpenPose-18 skeleton drawing: 8-bit RGB ``W x H``, black background
``KEY.json``           metadata: ``{"format_version": 1, "pid": str, "frames": [ref, target],
                       "provenance": {...}}``; ``frames`` are whatever locates the two images in their
                       source (frame numbers of a video, file names of a dataset); optionally
                       ``"contract"``: the condition contract the pair's maps were written for (as a
                       generator folder saves it, ``ConditionContract.to_config``)
==================  ==========================================================================

A sample may also hold the target's maps in other families' forms, for a generator whose condition
contract reads them (``PAIR_FORMS`` = ``posedive.generation.contract.EXTRA_FORMS``; each 8-bit RGB
``W x H``, drawn by the code that draws them for generation, ``posedive.generation.condition_forms``):
``KEY.depth_champ.png`` (Champ's depth), ``KEY.semantic_map.png`` (Champ's semantic map) and
``KEY.skeleton_dwpose.png`` (DWPose's skeleton drawing, as Moore-AnimateAnyone and Champ read it). They
are stored in RGB; a contract that reads a map in BGR (``dwpose-bgr``) reorders the channels when the
map becomes a tensor, in training as in generation. ``posedive pairs ... --family FAMILY`` writes the
forms a family reads. Training reads the maps its pose guider's contract names and refuses, before it
starts, pairs that lack one. Shards written before these members existed read as pairs without them.

The three condition maps are those of the *target* (the body fitted to the target image), drawn
exactly as the conditions stage draws them for generation (see ``posedive.schema.ConditionSet``), and
they have the target's size. The reference may have any size: training resizes both images and maps to
the configured resolution.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from .. import formats
from ..errors import FormatError, PathNotFound
from .contract import EXTRA_FORMS, ConditionContract

logger = logging.getLogger(__name__)

PAIRS_FORMAT_VERSION = formats.TRAINING_PAIRS.version
PAIR_FIELDS: tuple[str, ...] = ("reference.jpg", "target.jpg", "depth.png", "normal.png", "skeleton.png", "json")
# Optional members: the maps in other families' forms, each KEY.<form>.png.
PAIR_FORMS: tuple[str, ...] = EXTRA_FORMS
SHARD_PATTERN = "pairs-%06d.tar"
_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class TrainingPair:
    """One training example: identity from ``reference``, pose from the maps, ``target`` to reproduce."""

    key: str
    reference: np.ndarray  # (h, w, 3) uint8, any size
    target: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) uint8
    normal: np.ndarray  # (H, W, 3) uint8
    skeleton: np.ndarray  # (H, W, 3) uint8
    pid: str
    frames: list[Any] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    # The target's maps in other families' forms (``PAIR_FORMS``), (H, W, 3) uint8 each.
    forms: dict[str, np.ndarray] = field(default_factory=dict)
    # The condition contract the maps were written for; None in pairs that do not say.
    contract: ConditionContract | None = None

    def maps(self) -> dict[str, np.ndarray]:
        """Every condition map of the pair, keyed as ``posedive.generation.condition_forms`` keys them."""
        return {"depth": self.depth, "normal": self.normal, "skeleton": self.skeleton, **self.forms}

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first member with the wrong key, type or shape."""
        if not _KEY.match(self.key):
            raise ValueError(f"pair key {self.key!r} must match [A-Za-z0-9_-]+ (no dots)")
        for name, array, ndim in (
            ("reference", self.reference, 3),
            ("target", self.target, 3),
            ("depth", self.depth, 2),
            ("normal", self.normal, 3),
            ("skeleton", self.skeleton, 3),
        ):
            if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != ndim:
                raise ValueError(
                    f"pair {self.key}: {name} must be a uint8 array with {ndim} dimensions, got "
                    f"{getattr(array, 'dtype', type(array))} {getattr(array, 'shape', '')}"
                )
            if ndim == 3 and array.shape[2] != 3:
                raise ValueError(f"pair {self.key}: {name} must have 3 channels (RGB), got shape {array.shape}")
        unknown = sorted(set(self.forms) - set(PAIR_FORMS))
        if unknown:
            raise ValueError(f"pair {self.key}: unknown condition forms {unknown} (known: {', '.join(PAIR_FORMS)})")
        for name, array in self.forms.items():
            if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
                raise ValueError(f"pair {self.key}: {name} must be a uint8 RGB array, got "
                                 f"{getattr(array, 'dtype', type(array))} {getattr(array, 'shape', '')}")
        size = self.target.shape[:2]
        for name, array in self.maps().items():
            if array.shape[:2] != size:
                raise ValueError(
                    f"pair {self.key}: {name} map is {array.shape[:2]} but the target is {size} "
                    "(maps are the target's conditions, at the target's size)"
                )

    @property
    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "format_version": PAIRS_FORMAT_VERSION,
            "pid": self.pid,
            "frames": list(self.frames),
            "provenance": dict(self.provenance),
        }
        if self.contract is not None:
            meta["contract"] = self.contract.to_config()
        return meta


def _encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    else:
        Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_pair(pair: TrainingPair) -> dict[str, bytes]:
    """The tar members of one pair, keyed by their extension (``reference.jpg``, ..., ``json``)."""
    pair.validate()
    return {
        "reference.jpg": _encode(pair.reference, "JPEG"),
        "target.jpg": _encode(pair.target, "JPEG"),
        "depth.png": _encode(pair.depth, "PNG"),
        "normal.png": _encode(pair.normal, "PNG"),
        "skeleton.png": _encode(pair.skeleton, "PNG"),
        **{f"{name}.png": _encode(array, "PNG") for name, array in pair.forms.items()},
        "json": json.dumps(pair.metadata, sort_keys=True).encode(),
    }


def decode_pair(key: str, members: dict[str, bytes], shard: Path | str | None = None) -> TrainingPair:
    """Inverse of :func:`encode_pair`; raises ``FormatError`` naming a missing member or a format
    version this posedive does not read."""
    where = f"{shard}: pair {key}" if shard is not None else f"pair {key}"
    missing = [name for name in PAIR_FIELDS if name not in members]
    if missing:
        raise FormatError(f"{where}: missing members {missing} (a pair needs {list(PAIR_FIELDS)})")
    meta = json.loads(members["json"])
    formats.check_version(formats.TRAINING_PAIRS, formats.stated_version(meta), where)

    def image(name: str, mode: str) -> np.ndarray:
        with Image.open(io.BytesIO(members[name])) as img:
            return np.asarray(img.convert(mode))

    return TrainingPair(
        key=key,
        reference=image("reference.jpg", "RGB"),
        target=image("target.jpg", "RGB"),
        depth=image("depth.png", "L"),
        normal=image("normal.png", "RGB"),
        skeleton=image("skeleton.png", "RGB"),
        pid=str(meta["pid"]),
        frames=list(meta.get("frames", [])),
        provenance=dict(meta.get("provenance", {})),
        forms={name: image(f"{name}.png", "RGB") for name in PAIR_FORMS if f"{name}.png" in members},
        contract=ConditionContract.from_config(meta["contract"], f"{where}: contract") if "contract" in meta else None,
    )


class PairWriter:
    """Writes pairs into numbered tar shards ``DIR/pairs-000000.tar`` of at most ``pairs_per_shard``.

    Use as a context manager; keys must be unique within a writer.
    """

    def __init__(self, out_dir: Path | str, pairs_per_shard: int = 1000) -> None:
        if pairs_per_shard < 1:
            raise ValueError(f"pairs_per_shard must be >= 1, got {pairs_per_shard}")
        self.out_dir = Path(out_dir)
        self.pairs_per_shard = pairs_per_shard
        self.shards: list[Path] = []
        self.count = 0
        self._keys: set[str] = set()
        self._tar: tarfile.TarFile | None = None

    def __enter__(self) -> "PairWriter":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, pair: TrainingPair, keep: dict[str, bytes] | None = None) -> None:
        """Write ``pair``; ``keep``: members written as these bytes instead of encoded again (a copied
        pair's JPEG images, which a second encoding would degrade)."""
        if pair.key in self._keys:
            raise ValueError(f"pair key {pair.key!r} written twice")
        members = encode_pair(pair) | (keep or {})
        if self._tar is None or self.count % self.pairs_per_shard == 0:
            self._open_next()
        assert self._tar is not None
        for name, data in members.items():
            info = tarfile.TarInfo(f"{pair.key}.{name}")
            info.size = len(data)
            info.mode = 0o644
            self._tar.addfile(info, io.BytesIO(data))
        self._keys.add(pair.key)
        self.count += 1

    def _open_next(self) -> None:
        if self._tar is not None:
            self._tar.close()
        path = self.out_dir / (SHARD_PATTERN % len(self.shards))
        self._tar = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)
        self.shards.append(path)

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        logger.info("wrote %d pairs in %d shard(s) under %s", self.count, len(self.shards), self.out_dir)


def pair_shards(source: Path | str | Sequence[Path | str]) -> list[Path]:
    """The sorted shard files of a folder (``pairs-*.tar``), or the given files, checked to exist."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    shards: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*.tar"))
            if not found:
                raise PathNotFound(f"no .tar shards in pairs folder {path}", hint="write pairs with `posedive pairs VIDEO --out DIR`")
            shards.extend(found)
        elif path.is_file():
            shards.append(path)
        else:
            raise PathNotFound(f"pairs path {path} does not exist")
    return shards


def iter_pairs(source: Path | str | Sequence[Path | str]) -> Iterator[TrainingPair]:
    """Every pair of the shards in order (shards sorted by name, samples in tar order)."""
    for shard in pair_shards(source):
        yield from _iter_shard(shard)


def _iter_shard(shard: Path) -> Iterator[TrainingPair]:
    current: str | None = None
    members: dict[str, bytes] = {}
    with tarfile.open(shard, "r") as tar:
        for info in tar:
            if not info.isfile():
                continue
            name = Path(info.name).name
            key, _, ext = name.partition(".")
            if current is not None and key != current:
                yield decode_pair(current, members, shard)
                members = {}
            current = key
            handle = tar.extractfile(info)
            assert handle is not None
            members[ext] = handle.read()
    if current is not None:
        yield decode_pair(current, members, shard)


def write_pairs(pairs: Iterable[TrainingPair], out_dir: Path | str, pairs_per_shard: int = 1000) -> list[Path]:
    """Write ``pairs`` with a :class:`PairWriter`; returns the shard paths."""
    with PairWriter(out_dir, pairs_per_shard) as writer:
        for pair in pairs:
            writer.write(pair)
    return writer.shards


class PairsIndex:
    """Random access to the pairs of some shards without loading them: member offsets read once.

    ``len(index)`` pairs; ``index[i]`` decodes the i-th pair (shards in sorted order, tar order inside).
    File handles open lazily per process, so the index can be shared with data-loader workers.
    """

    def __init__(self, source: Path | str | Sequence[Path | str]) -> None:
        self.shards = pair_shards(source)
        self._entries: list[tuple[int, str, dict[str, tuple[int, int]]]] = []
        for shard_id, shard in enumerate(self.shards):
            current: str | None = None
            members: dict[str, tuple[int, int]] = {}
            with tarfile.open(shard, "r") as tar:
                for info in tar:
                    if not info.isfile():
                        continue
                    key, _, ext = Path(info.name).name.partition(".")
                    if current is not None and key != current:
                        self._entries.append((shard_id, current, members))
                        members = {}
                    current = key
                    members[ext] = (info.offset_data, info.size)
            if current is not None:
                self._entries.append((shard_id, current, members))
        self._handles: dict[int, Any] = {}
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> TrainingPair:
        shard_id, key, _ = self._entries[index]
        return decode_pair(key, self.members(index), self.shards[shard_id])

    def shard_of(self, index: int) -> Path:
        """The shard file holding the ``index``-th pair."""
        return self.shards[self._entries[index][0]]

    def members(self, index: int) -> dict[str, bytes]:
        """The encoded members of the ``index``-th pair, by extension (``reference.jpg``, ..., ``json``)."""
        import os

        if self._pid != os.getpid():
            self._handles = {}
            self._pid = os.getpid()
        shard_id, _, members = self._entries[index]
        handle = self._handles.get(shard_id)
        if handle is None:
            handle = self._handles[shard_id] = open(self.shards[shard_id], "rb")
        data: dict[str, bytes] = {}
        for ext, (offset, size) in members.items():
            handle.seek(offset)
            data[ext] = handle.read(size)
        return data

    def lacking(self, forms: Sequence[str]) -> Iterator[tuple[Path, str, list[str]]]:
        """``(shard, key, missing)`` of every pair that lacks one of the map ``forms`` (names of
        ``PAIR_FORMS`` or posedive's own maps), read from the member names alone."""
        for shard_id, key, members in self._entries:
            missing = [name for name in forms if f"{name}.png" not in members]
            if missing:
                yield self.shards[shard_id], key, missing

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = {}
        state["_pid"] = None
        return state
