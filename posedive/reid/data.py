"""Re-ID data: a Market-1501-layout folder, a posedive release merged into its training set, the PxK sampler.

A ``ReidItem`` is one image with its identity and camera; it points either at a file on disk (source
images) or at encoded bytes from a release shard (generated images), so a release is read straight
from its shards without unpacking. Generated images take a camera id of their own (by default the
first one the source does not use), so they never count as same-camera views of a real image.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import ConfigError, InputError, ReleaseError, SourceError

logger = logging.getLogger(__name__)

# Market-1501's file-name rule reads a single camera digit (``c(\d)``).
CAMERA_IDS = range(1, 10)


@dataclass(frozen=True)
class ReidItem:
    pid: int
    camid: int
    key: str  # path relative to the source root, or the release sample key
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    @property
    def generated(self) -> bool:
        return self.data is not None

    def open(self):
        """The image as RGB PIL."""
        from PIL import Image

        source = io.BytesIO(self.data) if self.data is not None else self.path
        with Image.open(source) as image:
            return image.convert("RGB")


@dataclass
class ReidData:
    """Train / query / gallery items of one Re-ID dataset (junk already dropped, distractors kept)."""

    name: str
    train: list[ReidItem]
    query: list[ReidItem]
    gallery: list[ReidItem]

    @property
    def source_camids(self) -> set[int]:
        return {item.camid for items in (self.train, self.query, self.gallery) for item in items}

    def summary(self) -> str:
        def ids(items: list[ReidItem]) -> int:
            return len({item.pid for item in items})

        generated = sum(item.generated for item in self.train)
        return (f"{self.name}: train {len(self.train)} images / {ids(self.train)} ids ({generated} generated), "
                f"query {len(self.query)} / {ids(self.query)}, gallery {len(self.gallery)} / {ids(self.gallery)}")


@dataclass(frozen=True)
class ReleaseSample:
    """One generated image of a release: its key, encoded bytes, image format and provenance."""

    key: str
    image: bytes
    image_format: str
    provenance: dict


def read_market_layout(root: Path | str) -> ReidData:
    """Read ``bounding_box_train``, ``query`` and ``bounding_box_test`` (rule ``([-\\d]+)_c(\\d)``).

    Junk (pid -1) is dropped; distractors (pid 0) stay in the gallery.
    """
    from ..sources.market1501 import read_market1501

    root = Path(root)
    index = read_market1501(root, check_images=True)  # training reads every image: drop broken ones first
    by_split: dict[str, list[ReidItem]] = {"train": [], "query": [], "gallery": []}
    for record in index.records:
        by_split[record.split].append(ReidItem(pid=record.pid, camid=record.camid, key=record.relpath, path=record.path))
    if not by_split["train"] or not by_split["query"] or not by_split["gallery"]:
        counts = {name: len(items) for name, items in by_split.items()}
        raise SourceError(f"{root}: a Market-1501 layout needs train, query and gallery images, found {counts}",
                          hint="point to the folder holding bounding_box_train, query and bounding_box_test")
    return ReidData(name=root.name, **by_split)


def iter_release_samples(release_root: Path | str) -> Iterator[ReleaseSample]:
    """Generated samples of a finished release, in shard order (the one place that reads shards)."""
    from ..release import Release

    release = Release.open(release_root)
    image_format = release.manifest.image_format
    for sample in release.iter_samples(decode=False):
        yield ReleaseSample(key=sample["key"], image=sample["image"], image_format=image_format,
                            provenance=sample["provenance"])


def generated_camid(source_camids: set[int], camid: int | None = None) -> int:
    """The camera id given to generated images: ``camid`` if set, else the first one the source lacks."""
    if camid is None:
        free = [c for c in CAMERA_IDS if c not in source_camids]
        if not free:
            raise InputError(f"the source uses every camera id {CAMERA_IDS.start}..{CAMERA_IDS.stop - 1}",
                             hint="choose one for generated images explicitly (--camid)")
        return free[0]
    if camid not in CAMERA_IDS:
        raise InputError(f"camera id {camid} is not a single digit {CAMERA_IDS.start}..{CAMERA_IDS.stop - 1}, "
                         f"which the Market-1501 file-name rule requires",
                         hint=f"give --camid {CAMERA_IDS.start}..{CAMERA_IDS.stop - 1}")
    if camid in source_camids:
        logger.warning("camera id %d is also a source camera: generated images share it with real ones", camid)
    return camid


def release_train_items(release_root: Path | str, train_pids: set[int], camid: int) -> list[ReidItem]:
    """Generated images of a release as training items with their source identity and ``camid``.

    Raises ValueError when a sample's identity is not a training identity of the source: the release
    was then built from another dataset (or another split) than the one it is merged into.
    """
    items: list[ReidItem] = []
    for sample in iter_release_samples(release_root):
        pid = int(sample.provenance["source"]["pid"])
        if pid not in train_pids:
            raise InputError(f"{release_root}: sample {sample.key} has pid {pid}, which is not a training "
                             f"identity of the source; the release was built from another dataset",
                             hint="give the source dataset the release was built from")
        items.append(ReidItem(pid=pid, camid=camid, key=sample.key, data=sample.image))
    if not items:
        raise ReleaseError(f"{release_root}: the release holds no samples", hint="build a release that keeps samples")
    return items


def with_release(data: ReidData, release_root: Path | str, camid: int | None = None) -> ReidData:
    """``data`` with the release's generated images added to its training set."""
    camid = generated_camid(data.source_camids, camid)
    generated = release_train_items(release_root, {item.pid for item in data.train}, camid)
    logger.info("%s: %d generated images with camera id %d", release_root, len(generated), camid)
    return ReidData(name=f"{data.name}+posedive", train=data.train + generated, query=data.query, gallery=data.gallery)


class PKSampler:
    """Batches of P identities x K images each (the sampler of the BoT triplet loss).

    Per epoch every identity's images are shuffled and cut into groups of K (identities with fewer
    than K images are drawn with replacement); batches take P groups of distinct identities until
    fewer than P identities have groups left. Yields flat indices; use it with ``batch_size=P*K``.
    The order is a function of ``seed`` and the epoch (``set_epoch``) only.
    """

    def __init__(self, pids: Sequence[int], p: int = 16, k: int = 4, seed: int = 0):
        if p < 1 or k < 1:
            raise ValueError(f"P and K must be positive, got P={p}, K={k}")
        groups: dict[int, list[int]] = {}
        for index, pid in enumerate(pids):
            groups.setdefault(int(pid), []).append(index)
        if len(groups) < p:
            raise ConfigError(f"P={p} identities per batch, but the training set has only {len(groups)}",
                              hint=f"set batch_p to {len(groups)} or fewer")
        self.by_pid = dict(sorted(groups.items()))
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        chunks: dict[int, list[list[int]]] = {}
        for pid, indices in self.by_pid.items():
            picked = rng.choice(indices, size=max(len(indices), self.k), replace=len(indices) < self.k).tolist()
            full = len(picked) // self.k * self.k
            chunks[pid] = [picked[i:i + self.k] for i in range(0, full, self.k)]
        batches = []
        while True:
            available = [pid for pid, groups in chunks.items() if groups]
            if len(available) < self.p:
                return batches
            chosen = rng.choice(available, size=self.p, replace=False)
            batches.append([index for pid in chosen for index in chunks[int(pid)].pop()])

    def __iter__(self) -> Iterator[int]:
        for batch in self._batches():
            yield from batch

    def __len__(self) -> int:
        return len(self._batches()) * self.p * self.k
