"""Source-bias statistics (paper Figure 2): how body orientation and pose are distributed in a dataset.

``compute_stats`` analyses one or more inputs (a source dataset, an augmented release) with BlazePose
and returns a ``StatsReport``: per input and per camera, the number of images with a person, their
mean keypoint confidence, a histogram of body azimuth (``orientation`` module's convention) and its
uniformity, and the spread of normalised poses. One PCA is fitted on all inputs together, so their
2D pose embeddings share axes and can be compared, as in the paper's figure. ``write_report`` stores
the JSON summary, one ``<input>.poses.jsonl`` per input (per-image azimuth and 2D embedding, for the
evaluation splits) and the plots.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .. import formats, paths
from ..pose.cache import PoseCache, PoseRecord
from ..storage import is_url
from .embedding import EMBEDDING_DIM, PosePCA, fit_pca, pose_embedding
from .images import ImageItem, analyse_items, estimator_settings
from .inputs import StatsInput
from .orientation import AZIMUTH_BINS, SECTORS, angular_difference, azimuth_histogram, azimuth_sector
from .plots import plot_cameras, plot_orientation, plot_poses

STATS_FORMAT_VERSION = formats.STATS.version
AZIMUTH_CONVENTION = (
    "degrees in [0, 360): direction of the camera around the body's vertical axis, from the body's front "
    "towards its left; 0 = facing the camera, 90 = left side visible, 180 = back to the camera, "
    "270 = right side visible (from a fit of the body model to BlazePose's landmarks, or from the world "
    "landmarks' shoulders and hips where the fit fails or orientation is 'landmarks'; see orientation_sources)"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupStats(_Model):
    """Statistics of one group of images (a whole input or one of its cameras)."""

    images: int
    persons_found: int
    mean_confidence: float | None = Field(None, description="mean COCO-17 confidence where a person was found")
    azimuth_histogram: list[int] = Field(description=f"{AZIMUTH_BINS} bins of 30 degrees, the first centred on 0")
    sectors: dict[str, float] = Field(description="fraction of azimuths in the front/left/back/right 90-degree sectors")
    orientation_sources: dict[str, int] = Field(
        default_factory=dict, description="images whose azimuth came from a body fit ('fit') or the landmark geometry"
    )
    azimuth_uniformity: float | None = Field(
        None, description="normalised entropy of the azimuth histogram: 1 = uniform over all directions, 0 = one bin"
    )
    pose_spread: float | None = Field(
        None, description="mean distance of the normalised pose embeddings to their centroid, in torso lengths"
    )
    requested_azimuth_histogram: list[int] | None = Field(
        None, description="generated images: the virtual cameras' azimuths, binned like azimuth_histogram"
    )
    azimuth_error_median_deg: float | None = Field(
        None, description="generated images: median angle between estimated and requested azimuth"
    )
    azimuth_within_45deg: float | None = Field(
        None, description="generated images: fraction whose estimated azimuth is within 45 degrees of the requested one"
    )


class InputStats(_Model):
    name: str
    kind: Literal["source", "release"]
    location: str
    overall: GroupStats
    cameras: dict[str, GroupStats]
    poses_file: str | None = None


class StatsReport(_Model):
    format_version: int = STATS_FORMAT_VERSION
    estimator: dict[str, Any]
    orientation: Literal["fit", "landmarks"] = Field(
        "landmarks", description="how body azimuths were estimated: 'fit' falls back to 'landmarks' per image"
    )
    azimuth_convention: str = AZIMUTH_CONVENTION
    azimuth_bin_centres_deg: list[float] = Field(
        default_factory=lambda: [i * 360.0 / AZIMUTH_BINS for i in range(AZIMUTH_BINS)]
    )
    embedding: PosePCA | None = None
    inputs: list[InputStats]
    plots: list[str] = Field(default_factory=list)


def uniformity(counts: Sequence[int]) -> float | None:
    total = float(sum(counts))
    if total == 0:
        return None
    p = np.asarray(counts, dtype=np.float64) / total
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(len(counts)))


def group_stats(
    records: Sequence[PoseRecord], embeddings: np.ndarray, requested: Sequence[float | None] | None = None
) -> GroupStats:
    """``embeddings`` holds one row per record (NaN rows are skipped); ``requested`` the virtual
    camera azimuth of each record, where known."""
    found = [r for r in records if r.person_found]
    azimuths = [r.azimuth_deg for r in found if r.azimuth_deg is not None]
    counts = azimuth_histogram(azimuths)
    sectors = {name: 0.0 for name in SECTORS}
    for azimuth in azimuths:
        sectors[azimuth_sector(azimuth)] += 1.0 / len(azimuths)
    valid = embeddings[~np.isnan(embeddings).any(axis=1)] if len(embeddings) else embeddings
    spread = float(np.linalg.norm(valid - valid.mean(axis=0), axis=1).mean()) if len(valid) >= 2 else None
    confidence = float(np.mean([np.mean(np.asarray(r.keypoints)[:, 2]) for r in found])) if found else None
    sources = {name: sum(1 for r in found if r.orientation_source == name) for name in ("fit", "landmarks")}
    stats = GroupStats(images=len(records), persons_found=len(found), mean_confidence=confidence,
                       azimuth_histogram=counts,
                       orientation_sources={name: count for name, count in sources.items() if count},
                       sectors={k: round(v, 4) for k, v in sectors.items()},
                       azimuth_uniformity=uniformity(counts), pose_spread=spread)
    known = [(r, a) for r, a in zip(records, requested or []) if a is not None]
    if known:
        errors = [angular_difference(r.azimuth_deg, a) for r, a in known if r.azimuth_deg is not None]
        stats.requested_azimuth_histogram = azimuth_histogram([a for _, a in known])
        if errors:
            stats.azimuth_error_median_deg = float(np.median(errors))
            stats.azimuth_within_45deg = float(np.mean(np.asarray(errors) < 45.0))
    return stats


def embed_records(records: Sequence[PoseRecord]) -> np.ndarray:
    """(N, 34) embeddings, NaN rows where no person was found."""
    rows = np.full((len(records), EMBEDDING_DIM), np.nan, dtype=np.float32)
    for i, record in enumerate(records):
        if record.person_found and record.keypoints is not None:
            try:
                rows[i] = pose_embedding(np.asarray(record.keypoints))
            except ValueError:
                pass
    return rows


def _display_name(stats_input: StatsInput) -> str:
    """A release folder is ``<name>/<version>``; name it by both."""
    if is_url(stats_input.location):  # <url>/<name>/<version>
        location = PurePosixPath(str(stats_input.location).split("://", 1)[1])
    else:
        location = Path(stats_input.location).resolve()
    if stats_input.kind == "release" and re.fullmatch(r"\d+\.\d+\.\d+\S*", location.name):
        return f"{location.parent.name} {location.name}"
    return stats_input.name


@dataclass
class StatsResult:
    """What ``compute_stats`` found: the summary and, per input, the per-image records and their 2D
    pose embedding (one row per image, NaN where nobody was found)."""

    report: StatsReport
    records: list[list[PoseRecord]]
    projections: list[np.ndarray]


def compute_stats(
    inputs: Sequence[StatsInput],
    *,
    workers: int = 1,
    cache_dir: Path | None = None,
    estimator_options: dict[str, Any] | None = None,
    orientation: Literal["fit", "landmarks"] = "fit",
) -> StatsResult:
    """Analyse every input (``workers`` processes, answers cached under ``cache_dir`` if given) and
    summarise it overall and per camera; one PCA is fitted on the poses of all inputs together.
    ``orientation`` picks how body azimuths are estimated (``posedive.analysis.images.analyse_items``)."""
    options = dict(estimator_options or {})
    cache = PoseCache(cache_dir) if cache_dir is not None else None
    try:
        all_records = [
            analyse_items(item.items, workers=workers, cache=cache, estimator_options=options,
                          orientation=orientation, description=f"poses of {_display_name(item)}")
            for item in inputs
        ]
    finally:
        if cache is not None:
            cache.close()
    embeddings = [embed_records(records) for records in all_records]
    stacked = np.concatenate(embeddings) if embeddings else np.zeros((0, EMBEDDING_DIM), np.float32)
    valid = stacked[~np.isnan(stacked).any(axis=1)]
    pca = fit_pca(valid) if len(valid) >= 2 else None
    projections = []
    for embedding in embeddings:
        projected = np.full((len(embedding), 2), np.nan, dtype=np.float32)
        ok = ~np.isnan(embedding).any(axis=1)
        if pca is not None and ok.any():
            projected[ok] = pca.transform(embedding[ok])
        projections.append(projected)
    summaries = []
    for stats_input, records, embedding in zip(inputs, all_records, embeddings):
        requested = [item.requested_azimuth_deg for item in stats_input.items]
        cameras = {}
        for camera in sorted({item.camera for item in stats_input.items}, key=_camera_order):
            rows = [i for i, item in enumerate(stats_input.items) if item.camera == camera]
            cameras[camera] = group_stats([records[i] for i in rows], embedding[rows], [requested[i] for i in rows])
        summaries.append(InputStats(name=_display_name(stats_input), kind=stats_input.kind,
                                    location=str(stats_input.location),
                                    overall=group_stats(records, embedding, requested), cameras=cameras))
    report = StatsReport(estimator=estimator_settings(options), orientation=orientation, embedding=pca,
                         inputs=summaries)
    return StatsResult(report=report, records=all_records, projections=projections)


def _camera_order(camera: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", camera)
    return (int(digits) if digits else 10**9, camera)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "input"


def _azimuths(records: Sequence[PoseRecord], items: Sequence[ImageItem], camera: str | None = None) -> np.ndarray:
    return np.array([r.azimuth_deg for r, item in zip(records, items)
                     if r.azimuth_deg is not None and (camera is None or item.camera == camera)], dtype=np.float64)


def _poses_line(item: ImageItem, record: PoseRecord, point: np.ndarray) -> str:
    confidence = None if record.keypoints is None else round(float(np.mean(np.asarray(record.keypoints)[:, 2])), 4)
    return json.dumps({
        "key": item.key,
        "camera": item.camera,
        "person_found": record.person_found,
        "azimuth_deg": None if record.azimuth_deg is None else round(record.azimuth_deg, 2),
        "orientation_source": record.orientation_source,
        "requested_azimuth_deg": item.requested_azimuth_deg,
        "mean_confidence": confidence,
        "embedding_2d": None if np.isnan(point).any() else [round(float(v), 4) for v in point],
        "keypoints": record.keypoints,
    })


def write_report(out_dir: Path, result: StatsResult, inputs: Sequence[StatsInput]) -> Path:
    """Write ``stats.json``, one ``<input>.poses.jsonl`` per input (per-image azimuth, keypoints and
    2D embedding) and the PNG plots into ``out_dir``; returns the JSON path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = result.report
    plots: list[Path] = []
    orientation, poses = [], []
    for stats_input, summary, records, points in zip(inputs, report.inputs, result.records, result.projections):
        poses_file = out_dir / paths.stats_poses_name(_slug(summary.name))
        poses_file.write_text("".join(_poses_line(item, record, point) + "\n"
                                      for item, record, point in zip(stats_input.items, records, points)))
        summary.poses_file = poses_file.name
        requested = np.array([item.requested_azimuth_deg for item in stats_input.items
                              if item.requested_azimuth_deg is not None], dtype=np.float64)
        orientation.append((summary.name, _azimuths(records, stats_input.items), requested if len(requested) else None))
        poses.append((summary.name, points, np.array([item.camera for item in stats_input.items])))
        if len(summary.cameras) > 1:
            per_camera = {camera: _azimuths(records, stats_input.items, camera) for camera in summary.cameras}
            plots.append(plot_cameras(out_dir / paths.stats_cameras_plot_name(_slug(summary.name)), summary.name, per_camera))
    plots.insert(0, plot_orientation(out_dir / paths.STATS_ORIENTATION_PLOT, orientation))
    if report.embedding is not None:
        plots.insert(1, plot_poses(out_dir / paths.STATS_POSES_PLOT, poses))
    report.plots = [path.name for path in plots]
    path = out_dir / paths.STATS_REPORT
    path.write_text(report.model_dump_json(indent=2) + "\n")
    return path
