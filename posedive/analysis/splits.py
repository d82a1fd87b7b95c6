"""Evaluation splits whose train and test sets share no viewpoint region or pose cluster (MSMT17-S).

Paper Table 5 and supplementary 1 build MSMT17-S (Cam) and MSMT17-S (Pose): splits of a Re-ID
dataset where the test set only holds camera viewpoints, or human poses, that training never saw.
posedive builds such splits for any source dataset in two steps:

1. **Labelling** (needs the pose estimator, cached by content): every image gets a *group*:

   * ``viewpoint``: a region made of the camera id and the sector of the estimated body orientation
     relative to the camera (front / left / back / right, ``posedive.analysis.orientation``), taken
     from a fit of the body model (``posedive.fitting``) or, where the fit fails or with
     ``orientation="landmarks"``, from BlazePose's landmark geometry;
     ``regions="camera"`` uses the camera alone (no estimator), ``"orientation"`` the sector alone;
   * ``pose``: a cluster of the normalised 2D pose embedding (``posedive.analysis.embedding``),
     k-means with a fixed seed.

   Images without a group (no person found, orientation undefined) are excluded and counted.

2. **Assignment** (``assign_splits``, a pure function of the per-image ``(image, pid, camid, group)``
   table): groups are divided between train and test by a seeded local search that keeps as many
   images as possible with the requested test share. Each identity then goes wholly to the side that
   holds most of its images (identities are disjoint, as Re-ID protocols require); its images in the
   other side's groups are excluded. Within test, each identity seen by at least two cameras gives one
   query per camera (from cameras with two or more images, else from one camera), so every query has
   a gallery match in another camera under the Market-1501 protocol; the rest is gallery. Distractors
   (pid 0) may only be gallery images.

Overlaps are measured afterwards on the written tables (``measure_overlap``), not assumed.

The published split definition is a folder of CSV tables (``image, pid, camid, group``; one per split
``train`` / ``query`` / ``gallery``) plus ``split.json`` (parameters, sizes, overlaps). The images
are not part of it: ``join_split`` resolves the tables against a local copy of the source dataset.
The folder's file names are in ``posedive.paths``; the report's type and the card of a published
split are in ``posedive.release.split_folder``, which ``posedive.hub`` publishes from.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..errors import FormatError, InputError, PathNotFound
from ..paths import EVAL_SPLITS, SPLIT_REPORT, split_table_name
from ..release.split_folder import OrientationKind, RegionKind, SplitBy, SplitOverlap, SplitReport, SplitSize

logger = logging.getLogger(__name__)

TABLE_COLUMNS: tuple[str, ...] = ("image", "pid", "camid", "group")


@dataclass(frozen=True)
class LabelledImage:
    """One source image and the viewpoint region or pose cluster it belongs to (``None``: unknown)."""

    image: str  # path relative to the source root, forward slashes
    pid: int
    camid: int
    group: str | None
    orientation_source: OrientationKind | None = None  # what gave the body azimuth behind a viewpoint group


@dataclass(frozen=True)
class SplitRow:
    image: str
    pid: int
    camid: int
    group: str
    split: str  # train, query or gallery


# ------------------------------------------------------------------------------------ labelling
def viewpoint_region(camid: int, azimuth_deg: float | None, regions: RegionKind = "camera+orientation") -> str | None:
    """The viewpoint region of an image: camera id, body-orientation sector, or both."""
    from .orientation import azimuth_sector

    if regions == "camera":
        return f"c{camid}"
    if azimuth_deg is None or not np.isfinite(azimuth_deg):
        return None
    sector = azimuth_sector(float(azimuth_deg))
    return sector if regions == "orientation" else f"c{camid}-{sector}"


def kmeans(points: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """Labels 0..k-1 of (N, D) points by k-means++ seeding and Lloyd iterations; deterministic for a
    seed and independent of nothing else. Clusters are renumbered by decreasing size (ties by first
    member) so labels do not depend on the seeding order."""
    data = np.asarray(points, dtype=np.float64)
    if data.ndim != 2 or len(data) == 0:
        raise ValueError(f"expected a non-empty (N, D) array, got shape {data.shape}")
    if not 1 <= k <= len(data):
        raise ValueError(f"k must be in [1, {len(data)}] for {len(data)} points, got {k}")
    rng = np.random.default_rng(seed)
    centres = [data[rng.integers(len(data))]]
    distance = ((data - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = distance.sum()
        index = int(rng.choice(len(data), p=distance / total)) if total > 0 else int(rng.integers(len(data)))
        centres.append(data[index])
        distance = np.minimum(distance, ((data - data[index]) ** 2).sum(axis=1))
    centre = np.stack(centres)
    labels = np.zeros(len(data), dtype=np.int64)
    for step in range(iterations):
        squared = ((data[:, None, :] - centre[None, :, :]) ** 2).sum(axis=2)
        new = squared.argmin(axis=1)
        if step and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = data[labels == j]
            if len(members):
                centre[j] = members.mean(axis=0)
    sizes = np.bincount(labels, minlength=k)
    first = np.array([np.flatnonzero(labels == j)[0] if sizes[j] else len(data) for j in range(k)])
    order = sorted(range(k), key=lambda j: (-sizes[j], first[j]))
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    return remap[labels]


def pose_clusters(keypoints: Sequence[np.ndarray | None], k: int = 8, seed: int = 0) -> list[str | None]:
    """Cluster names (``pose00`` ...) of COCO-17 keypoints by their pose embedding; ``None`` for an
    image without keypoints or with a degenerate skeleton."""
    from .embedding import pose_embedding

    embeddings, where = [], []
    for index, points in enumerate(keypoints):
        if points is None:
            continue
        try:
            embeddings.append(pose_embedding(np.asarray(points)))
        except ValueError:
            continue
        where.append(index)
    labels: list[str | None] = [None] * len(keypoints)
    if not embeddings:
        return labels
    found = kmeans(np.stack(embeddings), min(k, len(embeddings)), seed)
    for index, label in zip(where, found):
        labels[index] = f"pose{int(label):02d}"
    return labels


# ------------------------------------------------------------------------------------ assignment
def _order_key(seed: int, image: str) -> str:
    return hashlib.sha256(f"{seed}:{image}".encode()).hexdigest()


def _choose_test_groups(counts: np.ndarray, test_fraction: float, seed: int, restarts: int) -> np.ndarray:
    """Boolean test mask over groups maximising kept images with a test share near ``test_fraction``.

    ``counts[p, g]`` is the number of images of identity p in group g. An identity goes to the side
    that holds more of its images; the score is the kept fraction minus 4 x the distance of the test
    share from the target."""
    total = counts.sum()
    per_pid = counts.sum(axis=1)
    num_groups = counts.shape[1]

    def score(mask: np.ndarray) -> float:
        in_test = counts[:, mask].sum(axis=1)
        in_train = per_pid - in_test
        to_test = in_test > in_train
        kept_test = float(in_test[to_test].sum())
        kept_train = float(in_train[~to_test].sum())
        if kept_test == 0 or kept_train == 0:
            return -np.inf
        kept = kept_test + kept_train
        return kept / total - 4.0 * abs(kept_test / kept - test_fraction)

    rng = np.random.default_rng(seed)
    best_mask, best_score = None, -np.inf
    for _ in range(restarts):
        mask = rng.random(num_groups) < test_fraction
        if mask.all() or not mask.any():
            mask[rng.integers(num_groups)] = not mask.all()
        current = score(mask)
        for _ in range(50):
            improved = False
            for g in rng.permutation(num_groups):
                mask[g] = not mask[g]
                candidate = score(mask)
                if candidate > current + 1e-12:
                    current, improved = candidate, True
                else:
                    mask[g] = not mask[g]
            if not improved:
                break
        if current > best_score:
            best_mask, best_score = mask.copy(), current
    if best_mask is None or best_score == -np.inf:
        raise InputError("no division of the groups leaves images on both sides; the identities do not span "
                         "enough groups", hint="try another --by, more clusters, or another dataset")
    return best_mask


def assign_splits(
    images: Sequence[LabelledImage], *, test_fraction: float = 0.5, seed: int = 0, restarts: int = 8
) -> tuple[list[SplitRow], dict[str, int], list[str], list[str]]:
    """Divide groups and identities between train and test, then test into query and gallery.

    Returns ``(rows, excluded, train_groups, test_groups)``: the kept images with their split
    (sorted by image), counts of excluded images by reason, and the groups of each side. The result
    depends only on the set of input rows, ``test_fraction`` and ``seed`` (not on their order).
    """
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}",
                         hint="give --test-fraction between 0 and 1, e.g. 0.5")
    names = [row.image for row in images]
    if len(set(names)) != len(names):
        duplicate = next(name for name, n in Counter(names).items() if n > 1)
        raise ValueError(f"image {duplicate!r} is listed twice; image names must be unique")
    excluded: Counter[str] = Counter()
    labelled = []
    for row in images:
        if row.group is None:
            excluded["no_group"] += 1
        elif row.pid < 0:
            excluded["junk"] += 1
        else:
            labelled.append(row)
    groups = sorted({row.group for row in labelled if row.pid > 0})
    pids = sorted({row.pid for row in labelled if row.pid > 0})
    if len(groups) < 2:
        raise InputError(f"need identities in at least two groups to split, found {len(groups)} "
                         f"({', '.join(groups) or 'none'})", hint="try another --by or --regions, or more --clusters")
    group_index = {g: i for i, g in enumerate(groups)}
    pid_index = {p: i for i, p in enumerate(pids)}
    counts = np.zeros((len(pids), len(groups)), dtype=np.int64)
    for row in labelled:
        if row.pid > 0:
            counts[pid_index[row.pid], group_index[row.group]] += 1
    test_mask = _choose_test_groups(counts, test_fraction, seed, restarts)
    test_groups = {g for g in groups if test_mask[group_index[g]]}
    in_test = counts[:, test_mask].sum(axis=1)
    pid_side = {p: ("test" if in_test[i] > counts[i].sum() - in_test[i] else "train") for p, i in pid_index.items()}

    train, test = [], []
    for row in labelled:
        side = "test" if row.group in test_groups else "train"
        if row.pid == 0:
            if side == "test":
                test.append(row)
            else:
                excluded["distractor_in_train_group"] += 1
        elif pid_side[row.pid] != side:
            excluded["identity_on_other_side"] += 1
        else:
            (test if side == "test" else train).append(row)

    rows = [SplitRow(r.image, r.pid, r.camid, r.group or "", "train") for r in train]
    by_pid: dict[int, list[LabelledImage]] = defaultdict(list)
    for row in test:
        if row.pid == 0:
            rows.append(SplitRow(row.image, row.pid, row.camid, row.group or "", "gallery"))
        else:
            by_pid[row.pid].append(row)
    for pid, members in sorted(by_pid.items()):
        by_camera: dict[int, list[LabelledImage]] = defaultdict(list)
        for row in sorted(members, key=lambda r: _order_key(seed, r.image)):
            by_camera[row.camid].append(row)
        queries: set[str] = set()
        if len(by_camera) >= 2:
            multi = [cam for cam in sorted(by_camera) if len(by_camera[cam]) >= 2]
            if multi:
                queries = {by_camera[cam][0].image for cam in multi}
            else:
                first = min(by_camera, key=lambda cam: _order_key(seed, str(cam)))
                queries = {by_camera[first][0].image}
        for row in members:
            rows.append(SplitRow(row.image, row.pid, row.camid, row.group or "",
                                 "query" if row.image in queries else "gallery"))
    rows.sort(key=lambda r: r.image)
    return rows, dict(sorted(excluded.items())), sorted(set(groups) - test_groups), sorted(test_groups)


def measure_overlap(rows: Iterable[SplitRow]) -> SplitOverlap:
    """What the train rows share with the test (query + gallery) rows, measured on the table."""
    train_pids, test_pids, train_groups, test_groups = set(), set(), set(), set()
    train_images, test_images = set(), set()
    for row in rows:
        if row.split == "train":
            train_pids.add(row.pid), train_groups.add(row.group), train_images.add(row.image)
        else:
            if row.pid > 0:
                test_pids.add(row.pid)
            test_groups.add(row.group), test_images.add(row.image)
    return SplitOverlap(identities=len(train_pids & test_pids), groups=len(train_groups & test_groups),
                        images=len(train_images & test_images))


def count_valid_queries(rows: Sequence[SplitRow]) -> int:
    """Queries that have a gallery image of the same identity from another camera (Market-1501 protocol)."""
    gallery: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        if row.split == "gallery" and row.pid > 0:
            gallery[row.pid].add(row.camid)
    return sum(1 for row in rows if row.split == "query" and gallery[row.pid] - {row.camid})


def split_sizes(rows: Sequence[SplitRow]) -> dict[str, SplitSize]:
    sizes = {}
    for name in EVAL_SPLITS:
        members = [row for row in rows if row.split == name]
        sizes[name] = SplitSize(images=len(members), identities=len({r.pid for r in members if r.pid > 0}),
                                cameras=len({r.camid for r in members}), groups=len({r.group for r in members}))
    return sizes


# ------------------------------------------------------------------------------------ sources
def open_source(root: Path | str, format: str | None = None):
    """Read a source dataset folder (``posedive.sources``); Market-1501's layout is recognised alone."""
    from ..sources import read_source, source_config

    return read_source(source_config(root, format))


def label_source(
    index,
    by: SplitBy,
    *,
    regions: RegionKind = "camera+orientation",
    clusters: int = 8,
    seed: int = 0,
    workers: int = 1,
    cache_dir: Path | None = None,
    orientation: OrientationKind = "fit",
) -> list[LabelledImage]:
    """Give every record of a ``SourceIndex`` its viewpoint region or pose cluster. The pose estimator
    runs only when needed (not for ``regions="camera"``) and answers from the content cache; body
    orientations come from ``orientation`` (``posedive.analysis.images.analyse_items``)."""
    records = sorted(index.records, key=lambda r: r.relpath)
    if by == "viewpoint" and regions == "camera":
        return [LabelledImage(r.relpath, r.pid, r.camid, viewpoint_region(r.camid, None, "camera")) for r in records]
    from ..pose.cache import PoseCache, default_cache_dir
    from .images import ImageItem, analyse_items

    items = [ImageItem(key=r.relpath, camera=f"c{r.camid}", location=Path(r.path)) for r in records]
    with PoseCache(cache_dir or default_cache_dir()) as cache:
        poses = analyse_items(items, workers=workers, cache=cache,
                              orientation=orientation if by == "viewpoint" else "landmarks",  # pose: no fits
                              description=f"estimating poses for {by} splits")
    if by == "viewpoint":
        return [LabelledImage(r.relpath, r.pid, r.camid,
                              viewpoint_region(r.camid, p.azimuth_deg if p.person_found else None, regions),
                              p.orientation_source if p.person_found else None)
                for r, p in zip(records, poses)]
    keypoints = [np.asarray(p.keypoints) if p.person_found and p.keypoints else None for p in poses]
    groups = pose_clusters(keypoints, clusters, seed)
    return [LabelledImage(r.relpath, r.pid, r.camid, g) for r, g in zip(records, groups)]


@dataclass(frozen=True)
class SplitResult:
    rows: list[SplitRow]
    report: SplitReport


def make_split(
    index,
    by: SplitBy,
    *,
    regions: RegionKind = "camera+orientation",
    clusters: int = 8,
    test_fraction: float = 0.5,
    seed: int = 0,
    workers: int = 1,
    cache_dir: Path | None = None,
    labelled: Sequence[LabelledImage] | None = None,
    orientation: OrientationKind = "fit",
) -> SplitResult:
    """Label a source (unless ``labelled`` is given), assign the split and measure it."""
    if by not in ("viewpoint", "pose"):
        raise ValueError(f"--by must be viewpoint or pose, got {by!r}")
    computed = labelled is None
    if labelled is None:
        labelled = label_source(index, by, regions=regions, clusters=clusters, seed=seed, workers=workers,
                                cache_dir=cache_dir, orientation=orientation)
    oriented = by == "viewpoint" and regions != "camera"
    sources = Counter(row.orientation_source for row in labelled if row.orientation_source is not None)
    rows, excluded, train_groups, test_groups = assign_splits(labelled, test_fraction=test_fraction, seed=seed)
    report = SplitReport(
        dataset=index.dataset, source_format=index.format, by=by, regions=regions if by == "viewpoint" else None,
        clusters=clusters if by == "pose" else None, orientation=orientation if oriented and computed else None,
        orientation_sources=dict(sorted(sources.items())) if oriented else None, test_fraction=test_fraction, seed=seed,
        train_groups=train_groups, test_groups=test_groups, sizes=split_sizes(rows), excluded=excluded,
        overlap=measure_overlap(rows), queries_with_cross_camera_match=count_valid_queries(rows),
    )
    return SplitResult(rows, report)


# ------------------------------------------------------------------------------------ tables
def write_split(result: SplitResult, folder: Path | str) -> Path:
    """Write ``train.csv``, ``query.csv``, ``gallery.csv`` and ``split.json`` into ``folder``; the
    overlaps in ``split.json`` are measured again on the tables as written."""
    from ..files import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in EVAL_SPLITS:
        lines = [",".join(TABLE_COLUMNS)]
        for row in result.rows:
            if row.split == name:
                lines.append(",".join(_csv_field(v) for v in (row.image, row.pid, row.camid, row.group)))
        atomic_write_text(folder / split_table_name(name), "\n".join(lines) + "\n")
    written = read_split(folder)
    report = result.report.model_copy(update={"overlap": measure_overlap(written), "sizes": split_sizes(written)})
    atomic_write_text(folder / SPLIT_REPORT, report.model_dump_json(indent=2) + "\n")
    return folder


def _csv_field(value: object) -> str:
    text = str(value)
    if any(c in text for c in ',"\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def read_split(folder: Path | str) -> list[SplitRow]:
    """The rows of a split folder written by ``write_split`` (or downloaded from the Hub)."""
    folder = Path(folder)
    rows = []
    for name in EVAL_SPLITS:
        table = folder / split_table_name(name)
        if not table.is_file():
            raise PathNotFound(f"{table} not found; a split folder holds {', '.join(EVAL_SPLITS)} tables",
                               hint="make one with `posedive splits SOURCE --by viewpoint|pose`")
        with open(table, newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != TABLE_COLUMNS:
                raise FormatError(f"{table}: columns {reader.fieldnames}, expected {list(TABLE_COLUMNS)}",
                                  hint="write split tables with `posedive splits`")
            rows += [SplitRow(r["image"], int(r["pid"]), int(r["camid"]), r["group"], name) for r in reader]
    return rows


@dataclass(frozen=True)
class SplitImage:
    """A split row resolved against a local copy of the source dataset."""

    path: Path
    image: str
    pid: int
    camid: int
    split: str


def join_split(rows: Iterable[SplitRow | Mapping[str, object]], source_root: Path | str,
               split: str | None = None) -> list[SplitImage]:
    """Resolve split rows (``SplitRow`` or mappings with ``image, pid, camid, split``, e.g. rows of
    ``load_dataset(..., "viewpoint")``) to image files under ``source_root``; raises if any is missing
    (wrong root, or a different version of the dataset)."""
    root = Path(source_root)
    joined, missing = [], []
    for row in rows:
        data = row if isinstance(row, Mapping) else row.__dict__
        name = split or str(data["split"])
        if split is not None and "split" in data and data["split"] != split:
            continue
        path = root / str(data["image"])
        if not path.is_file():
            missing.append(str(data["image"]))
            continue
        joined.append(SplitImage(path, str(data["image"]), int(data["pid"]), int(data["camid"]), name))
    if missing:
        raise PathNotFound(f"{len(missing)} images of the split are not under {root} (first: {missing[0]})",
                           hint="point to the root of the source dataset the split was made from")
    return joined


def describe(report: SplitReport) -> str:
    sizes = "; ".join(f"{name} {s.images} images / {s.identities} ids / {s.groups} groups"
                      for name, s in report.sizes.items())
    excluded = ", ".join(f"{k} {v}" for k, v in report.excluded.items()) or "none"
    o = report.overlap
    orientation = ""
    if report.orientation_sources is not None:
        counts = ", ".join(f"{k} {v}" for k, v in report.orientation_sources.items()) or "none"
        orientation = f" Body orientation ({report.orientation or 'given'}) from: {counts}."
    return (f"{report.dataset} split by {report.by}: {sizes}.{orientation} Excluded: {excluded}. "
            f"Overlap train/test: "
            f"{o.identities} identities, {o.groups} groups, {o.images} images. Queries with a cross-camera "
            f"match: {report.queries_with_cross_camera_match}/{report.sizes['query'].images}. "
            f"Test groups: {', '.join(report.test_groups)}")
