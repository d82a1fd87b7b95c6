"""What ``posedive stats`` can look at, turned into lists of images grouped by camera.

* a recipe (``.yaml``/``.yml``): its ``source`` section, read with ``posedive.sources``;
* a source dataset folder with its ``format`` (Market-1501's layout is recognised without one);
* an augmented release: a release folder (its shards are ``posedive.paths.SHARD_GLOB``) or any other
  folder holding WebDataset shards (``*.tar``, hidden folders such as an unfinished build's skipped),
  grouped into samples as ``webdataset`` does; each sample's ``jpg`` (or ``png``) image is analysed.

No image is read here: a source image's item names its file, a release image's item the shard member
holding it (``images.TarMember``), and ``images.analyse_items`` reads them a chunk at a time.
Only the samples' small ``json`` provenance is read from the shards.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from ..errors import InputError, PathNotFound, ReleaseError, SourceError
from ..storage import StoreFile, is_url
from .images import ImageItem, TarMember, open_tar

logger = logging.getLogger(__name__)

SplitChoice = Literal["train", "query", "gallery", "all"]


@dataclass(frozen=True)
class StatsInput:
    name: str
    kind: Literal["source", "release"]
    location: Path | str  # a folder, or the URL of a remote release
    items: list[ImageItem]


def _source_items(config, base_dir: Path | None, split: SplitChoice) -> tuple[str, Path, list[ImageItem]]:
    from ..sources import read_source

    # Statistics decode every image anyway: check them all first, listing the unreadable ones.
    index = read_source(config, base_dir, check_images=True)
    records = index.records if split == "all" else index.split(split)
    if not records:
        raise SourceError(f"{index.root}: the {split} split of {index.dataset} holds no images",
                          hint="choose another --split, or check the dataset's layout")
    items = [ImageItem(key=r.relpath, camera=f"c{r.camid}", location=Path(r.path)) for r in records]
    return index.dataset, Path(index.root), items


def _shard_paths(folder: "Path | str") -> "list[Path | StoreFile]":
    from ..paths import SHARD_GLOB

    if is_url(folder):  # a remote release: the shards its manifest lists, read from its store
        from ..release import Release

        return Release.open(str(folder)).shard_paths()

    release_shards = sorted(folder.glob(SHARD_GLOB))
    if release_shards:
        return release_shards
    return sorted(
        path for path in folder.rglob("*.tar")
        if not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _sample_metadata(sample: dict) -> tuple[str, float | None]:
    """From a sample's provenance (``json``): the source camera its reference image came from
    (``source.camid``; "generated" when unknown) and the virtual camera's azimuth
    (``camera.azimuth_deg``), which uses the same convention as ``orientation``."""
    try:
        meta = json.loads(sample["json"]) if sample.get("json") is not None else {}
    except (ValueError, TypeError):
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    camera = "generated"
    for holder in (meta.get("source"), meta):
        if isinstance(holder, dict) and isinstance(holder.get("camid"), int):
            camera = f"c{holder['camid']}"
            break
    virtual = meta.get("camera")
    azimuth = virtual.get("azimuth_deg") if isinstance(virtual, dict) else None
    return camera, float(azimuth) % 360.0 if isinstance(azimuth, (int, float)) else None


def _shard_samples(shard: Path) -> Iterator[dict]:
    """The samples of one WebDataset shard, grouped as ``webdataset`` groups them (regular members,
    ``__*__`` metadata skipped, key = name up to the first dot of its base name, lower-case suffixes):
    the ``json`` field read, every other field a ``TarMember`` whose bytes stay in the shard."""
    import re

    from webdataset.tariterators import group_by_keys

    def members() -> Iterator[dict]:
        with open_tar(shard) as tar:  # random access: iterating reads headers and seeks past data
            for info in tar:
                name = info.name
                if not info.isreg() or re.match(r"__[^/]*__($|/)", name):
                    continue
                if name.lower().endswith(".json"):
                    value: bytes | TarMember = tar.extractfile(info).read()
                else:
                    value = TarMember(shard=shard, name=name, offset=info.offset_data, size=info.size)
                yield {"fname": name, "data": value, "__url__": str(shard)}

    return group_by_keys(members())


def release_items(folder: "Path | str") -> list[ImageItem]:
    """Every sample image of the WebDataset shards under ``folder``, in shard and key order; the
    images themselves are not read (each item's ``location`` is its ``TarMember``)."""
    shards = _shard_paths(folder)
    if not shards:
        raise InputError(f"{folder}: no WebDataset shards (*.tar) found",
                         hint="give a release folder (<output.dir>/<name>/<version>)")
    items: list[ImageItem] = []
    for shard in shards:
        for sample in _shard_samples(shard):
            image = sample.get("jpg", sample.get("png"))
            if image is None:
                logger.warning("%s: sample %s has no jpg or png image; skipped", sample.get("__url__"),
                               sample["__key__"])
                continue
            camera, azimuth = _sample_metadata(sample)
            items.append(ImageItem(key=sample["__key__"], camera=camera, location=image,
                                   requested_azimuth_deg=azimuth))
    if not items:
        raise ReleaseError(f"{folder}: the shards hold no jpg/png images",
                           hint="these are not a posedive release's shards, or the release is empty")
    return items


def resolve_input(path: Path | str, format: str | None = None, split: SplitChoice = "train") -> StatsInput:
    """A recipe, a source folder, a release folder or a release's URL -> the images to analyse."""
    if is_url(path):
        url = str(path).rstrip("/")
        return StatsInput(name=url.rsplit("/", 1)[-1], kind="release", location=url, items=release_items(url))
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        from ..recipe import load_recipe

        recipe = load_recipe(path)
        name, root, items = _source_items(recipe.source, recipe.base_dir, split)
        return StatsInput(name=name, kind="source", location=root, items=items)
    if not path.is_dir():
        raise PathNotFound(f"{path}: neither a recipe (.yaml) nor a dataset or release folder",
                           hint="give a recipe file, a source dataset folder or a release folder")
    if format is None and _shard_paths(path):
        return StatsInput(name=path.resolve().name, kind="release", location=path, items=release_items(path))
    from ..sources import source_config

    name, root, items = _source_items(source_config(path, format), None, split)
    return StatsInput(name=name, kind="source", location=root, items=items)
