"""A release: the folder ``<output>/<name>/<version>/`` and its typed manifest.

The manifest is written last, atomically: its presence marks a finished, immutable release. It holds
each shard's sample count and sha256, every other file's hash, the build totals, the recipe hash and
the software versions; it holds no timestamps, so the same recipe gives a byte-identical manifest
however the build was split, interrupted or resumed.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, ConfigDict, Field

from .. import __version__, formats, paths
from ..errors import ReleaseError
from ..schema import GeneratorInfo
from ..shards import iter_shard_members
from ..storage import Store, StoreFile, is_url, open_store
from .quality import ReleaseQuality
from .remote import open_release_store


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShardEntry(_Model):
    path: str
    samples: int
    sha256: str
    bytes: int


class FileEntry(_Model):
    sha256: str
    bytes: int


class RejectedAttempt(_Model):
    """One line of ``rejected/<shard>.jsonl``: an attempt the filter turned down, with its scores."""

    key: str
    pid: int
    attempt: int
    stage: str
    reason: str
    reference: str
    pose_id: str
    elevation_deg: float
    azimuth_deg: float
    seed: int
    scores: dict[str, float | None]


class StageTotals(_Model):
    """Attempts per filter stage, summed over work units (``short_units`` never reached acceptance)."""

    work_units: int = 0
    attempts: int = 0
    reference_rejected: int = 0
    target_rejected: int = 0
    generated_rejected: int = 0
    accepted: int = 0
    short_units: int = 0

    def add(self, other: "StageTotals") -> "StageTotals":
        return StageTotals(**{name: getattr(self, name) + getattr(other, name) for name in StageTotals.model_fields})

    def rates(self) -> dict[str, float]:
        """Acceptance rate of each stage among the attempts that reached it."""
        reached_target = self.attempts - self.reference_rejected
        reached_generated = reached_target - self.target_rejected

        def ratio(kept: int, total: int) -> float:
            return round(kept / total, 4) if total else 0.0

        return {
            "reference": ratio(reached_target, self.attempts),
            "target": ratio(reached_generated, reached_target),
            "generated": ratio(self.accepted, reached_generated),
            "overall": ratio(self.accepted, self.attempts),
        }


class UnreadableImage(_Model):
    """A source image a shard's build could not decode: found lazily, in the worker that loaded it."""

    image: str = Field(description="relative to the source root, as the plan names it")
    reason: str


class ShardStats(_Model):
    """Counts of one shard and the stages that built it, stored beside its rejected log (so copied
    parts carry them, and finishing a release reads which generator and estimator made it from files).
    ``generator`` and ``estimator`` are missing only in stats written before they were recorded."""

    shard: int
    totals: StageTotals
    short_pids: list[int] = Field(default_factory=list)
    generator: GeneratorInfo | None = None
    estimator: str | None = None
    unreadable: list[UnreadableImage] = Field(default_factory=list)


class SourceSummary(_Model):
    dataset: str
    format: str
    counts: dict[str, dict[str, int]]
    junk: int
    unreadable: list[str] = Field(description="source images that could not be decoded (relative paths): "
                                  "those the build's workers met, and any a full check of the source listed")


class Manifest(_Model):
    format_version: int = formats.RELEASE.version
    name: str
    version: str
    recipe_hash: str
    plan_hash: str
    posedive_version: str = __version__
    source: SourceSummary
    generator: GeneratorInfo
    estimator: str
    condition_maps: list[str]
    image_format: str
    shards: list[ShardEntry]
    totals: StageTotals
    identities: int
    short_pids: list[int]
    viewpoint_entropy: float = Field(description="entropy of the accepted samples' azimuth x elevation "
                                     "histogram over its uniform maximum (1.0 = uniform coverage)")
    quality: ReleaseQuality | None = Field(None, description="filter pass rates, eq. 12 pose differences and "
                                           "identity similarity (posedive.release.quality); None in older manifests")
    files: dict[str, FileEntry]

    @property
    def samples(self) -> int:
        return sum(shard.samples for shard in self.shards)


class Release:
    """A finished release: a local folder (``root``) or a remote location (``store``, an fsspec URL)."""

    def __init__(self, root: Path | Store, manifest: Manifest):
        # Local releases keep their folder as a Path: exports, pushes and Re-ID training read it.
        if isinstance(root, Store):
            self.store, self.root = root, (root.local_path() if root.local else None)
        else:
            self.store, self.root = open_store(root), Path(root)
        self.manifest = manifest

    @classmethod
    def open(cls, root: Path | str) -> "Release":
        """The finished release in a local folder or at an fsspec URL; a posedive error naming the
        location (and, for a URL, what failed: credentials, endpoint, bucket) when there is none."""
        if is_url(root):
            store = open_release_store(str(root))
            return cls(store, read_manifest(store.file(paths.MANIFEST)))
        store = open_store(Path(root))
        if not store.is_file(paths.MANIFEST):
            raise ReleaseError(f"{root}: no {paths.MANIFEST}; not a finished posedive release "
                               f"(an unfinished build resumes with `posedive build RECIPE`)")
        return cls(Path(root), read_manifest(store.file(paths.MANIFEST)))

    def shard_paths(self) -> list["Path | StoreFile"]:
        return [self.store.file(shard.path) for shard in self.manifest.shards]

    def files(self) -> dict[str, FileEntry]:
        """Every file of the release (shards included) with its hash, keyed by relative path."""
        entries = {shard.path: FileEntry(sha256=shard.sha256, bytes=shard.bytes) for shard in self.manifest.shards}
        entries.update(self.manifest.files)
        entries[paths.MANIFEST] = FileEntry(sha256=self.store.sha256(paths.MANIFEST),
                                            bytes=self.store.size(paths.MANIFEST))
        return dict(sorted(entries.items()))

    def unlisted_files(self) -> list[str]:
        """Files in the release folder that the manifest does not list, as relative paths; posedive's
        own state beside a release (``paths.LOCAL_STATE``: the build folder, the Hub record) aside."""
        listed = set(self.files())
        if self.root is None:  # an object store has no folders nor links: every key under the location
            return [relpath for relpath in self.store.walk_files()
                    if not paths.is_local_state(relpath) and relpath not in listed]
        found = []
        for folder, subfolders, names in os.walk(self.root):
            relfolder = Path(folder).relative_to(self.root).as_posix()
            prefix = "" if relfolder == "." else f"{relfolder}/"
            kept = [name for name in subfolders if not paths.is_local_state(prefix + name)]
            links = [name for name in kept if os.path.islink(os.path.join(folder, name))]  # never walked into
            subfolders[:] = sorted(set(kept) - set(links))
            found += [prefix + name for name in [*names, *links]
                      if not paths.is_local_state(prefix + name) and prefix + name not in listed]
        return sorted(found)

    def verify(self) -> list[str]:
        """Files whose size or sha256 differ from the manifest, files it lists that are missing, and files
        it does not list (empty when the release is intact)."""
        problems = []
        store = self.store
        for relpath, entry in self.files().items():
            if relpath == paths.MANIFEST:
                continue
            if not store.is_file(relpath):
                problems.append(f"{relpath}: missing")
            elif store.size(relpath) != entry.bytes or store.sha256(relpath) != entry.sha256:
                problems.append(f"{relpath}: content differs from the manifest")
        problems += [f"{relpath}: not listed in the manifest (not part of this release: move it out of the folder)"
                     for relpath in self.unlisted_files()]
        return problems

    def iter_samples(self, decode: bool = True) -> Iterator[dict]:
        """Samples in shard order: ``key``, ``image`` (PIL), ``provenance`` (dict) and condition maps."""
        from PIL import Image

        for shard in self.shard_paths():
            grouped: dict[str, dict] = {}
            order: list[str] = []
            for key, field, data in iter_shard_members(shard):
                if key not in grouped:
                    grouped[key] = {}
                    order.append(key)
                grouped[key][field] = data
            for key in order:
                fields = grouped[key]
                sample: dict = {"key": key, "provenance": json.loads(fields.pop("json"))}
                for field, data in fields.items():
                    name = "image" if field in ("jpg", "png") else field.removesuffix(".png")
                    sample[name] = Image.open(io.BytesIO(data)) if decode else data
                yield sample


def write_manifest(root: Path | Store, manifest: Manifest) -> None:
    store = root if isinstance(root, Store) else open_store(root)
    store.write_text(paths.MANIFEST, manifest.model_dump_json(indent=2) + "\n")


def read_manifest(path: Path) -> Manifest:
    """A release's ``manifest.json``, its format version checked first."""
    return formats.read_json(formats.RELEASE, path, Manifest)


def read_json_model(path: Path, model: type[BaseModel]) -> BaseModel:
    return model.model_validate_json(path.read_text())
