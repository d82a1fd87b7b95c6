"""Plots stored in a release: where the accepted samples' cameras stood (azimuth x elevation) and
which poses they show (Figure 2 of the paper), drawn with the conditions stage's coverage functions,
each identity's body shape (``posedive.conditions.body_panel``), and a contact sheet of samples:
reference image, stored condition maps and generated image side by side.

They are drawn from the shards, so they show what the release holds, not what was planned; the pose
embedding uses the SMPL-24 pose each sample records, and the contact sheet reads the reference image
from the source dataset the sample's provenance names.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .. import paths
from ..recipe import Recipe
from ..shards import iter_provenance, iter_shard_members

if TYPE_CHECKING:
    from ..conditions.body_panel import BodyShapePanel
    from .quality import ReleaseQuality

SAMPLES_SHOWN = 8
QUALITY_PLOT = f"{paths.PLOTS_DIR}/quality.png"


@dataclass
class ReleaseCoverage:
    plots: list[str]
    viewpoint_entropy: float


def _pose_group(body: dict) -> str:
    """The tag a sample's pose is shown by; samples of releases made before poses had tags are
    grouped by clip (``deepmimic-walk-00012-mirror`` -> ``deepmimic-walk``)."""
    from ..conditions.posebank import shown_tag

    if body.get("pose_tags"):
        return shown_tag(body["pose_tags"])
    pose_id = body["pose_id"]
    return "-".join(part for part in pose_id.split("-") if not part.isdigit() and part != "mirror") or pose_id


def read_release_records(shard_paths: list[Path]) -> tuple[list[dict], dict[str, Path]]:
    """Every sample's provenance, in shard order, and the shard that holds each sample's key."""
    shard_of: dict[str, Path] = {}
    records = []
    for shard in shard_paths:
        for record in iter_provenance([shard]):
            shard_of[record["key"]] = shard
            records.append(record)
    return records, shard_of


def write_release_plots(recipe: Recipe, root: Path, records: list[dict], shard_of: dict[str, Path]) -> ReleaseCoverage:
    """The release's plots from its samples' provenance ``records`` (``read_release_records``)."""
    from ..conditions.coverage import (
        normalised_entropy,
        plot_poses,
        plot_viewpoints,
        pose_embedding,
        viewpoint_histogram,
    )

    if not records:
        return ReleaseCoverage(plots=[], viewpoint_entropy=0.0)
    elevation = np.array([r["camera"]["elevation_deg"] for r in records])
    azimuth = np.array([r["camera"]["azimuth_deg"] for r in records])
    ranges = recipe.viewpoint.elevation_deg, recipe.viewpoint.azimuth_deg
    histogram = viewpoint_histogram(elevation, azimuth, *ranges)
    entropy = normalised_entropy(histogram)
    (root / paths.PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    viewpoints, poses, bodies, samples = paths.RELEASE_PLOTS
    plot_viewpoints(histogram, *ranges, entropy, root / viewpoints)
    pose_array = np.array([r["body"]["pose"] for r in records], dtype=np.float64)
    plot_poses(pose_embedding(pose_array), [_pose_group(r["body"]) for r in records], root / poses)
    write_body_panel(recipe, records, shard_of, root / bodies)
    shown = shown_samples(records)
    plot_samples(recipe, shown, shard_of, root / samples)
    return ReleaseCoverage(plots=[viewpoints, poses, bodies, samples], viewpoint_entropy=round(entropy, 6))


def release_body_panel(records: Sequence[dict]) -> "BodyShapePanel":
    """The body-shape panel's numbers: each identity's ``body_shape`` as its (first) sample records it
    (a release made before shapes were recorded: each identity's rendered ``body.shape``, as fixed)."""
    from ..conditions.body_panel import identity_bodies, paired_identities

    shapes: dict[int, dict] = {}
    for record in records:
        pid = record["source"]["pid"]
        if pid not in shapes:
            shapes[pid] = record.get("body_shape") or {"source": "fixed", "labels": [],
                                                       "values": list(record["body"].get("shape", []))}
    panel = identity_bodies(shapes)
    return panel.model_copy(update={"paired": paired_identities(list(shapes))})


def paired_samples(records: Sequence[dict], pids: Sequence[int]) -> dict[int, dict]:
    """Per shown identity, the sample whose camera looks most nearly at the body's front or back (as a
    Re-ID crop does), so its target silhouette compares with the reference's; ties go to the first."""
    from ..conditions.body_panel import off_axis_deg

    def off_axis(record: dict) -> float:
        return off_axis_deg(record["camera"]["azimuth_deg"], record["camera"]["elevation_deg"])

    chosen: dict[int, dict] = {}
    wanted = set(pids)
    for record in records:
        pid = record["source"]["pid"]
        if pid in wanted and (pid not in chosen or off_axis(record) < off_axis(chosen[pid])):
            chosen[pid] = record
    return chosen


def write_body_panel(recipe: Recipe, records: Sequence[dict], shard_of: dict[str, Path], path: Path,
                     segmenter=None) -> "BodyShapePanel":
    """``plots/bodies.png``: the shape values over identities and, for a few identities, the reference's
    silhouette beside the target body's (``posedive.conditions.body_panel``). The reference silhouettes
    are BlazePose's segmentation (``segmenter``: images -> masks; by default BlazePose when the samples
    record shapes fitted to the references, the estimator that fit already needed; otherwise none are drawn)."""
    from PIL import Image

    from ..conditions.body_panel import plot_body_panel, segment_references, target_silhouette

    panel = release_body_panel(records)
    samples = paired_samples(records, panel.paired)
    members = _sample_images(list(samples.values()), shard_of)
    targets = {}
    for pid, record in samples.items():
        fields = members[record["key"]]
        maps = {name: np.asarray(Image.open(io.BytesIO(fields[paths.condition_member(name)])))
                for name in recipe.output.condition_maps if name in ("depth", "normal")}
        targets[pid] = target_silhouette(maps)
    # Segment only where the build already fitted shapes (so it needed BlazePose's segmentation): a
    # release of fixed or drawn bodies is finished without any model.
    if segmenter is None and any((r.get("body_shape") or {}).get("mode") == "reference" for r in samples.values()):
        segmenter = segment_references
    references: dict[int, np.ndarray | None] = {pid: None for pid in samples}
    source_root = recipe.resolve(recipe.source.root)
    found = [pid for pid, record in samples.items() if (source_root / record["source"]["image"]).is_file()]
    if segmenter is not None and found:
        images = [np.asarray(Image.open(source_root / samples[pid]["source"]["image"]).convert("RGB")) for pid in found]
        references.update(zip(found, segmenter(images)))
    plot_body_panel(panel, {pid: (references[pid], targets[pid]) for pid in samples}, path,
                    title=f"body shapes of the {len(panel.identities)} identities ({recipe.body.model}, "
                          f"body.shape: {recipe.body.shape})")
    return panel


def shown_samples(records: Sequence[dict], count: int = SAMPLES_SHOWN) -> list[dict]:
    """The contact sheet's samples: the first sample of each identity, ``count`` identities spread
    evenly over the release (the same release always shows the same samples)."""
    first: dict[int, dict] = {}
    for record in records:
        first.setdefault(record["source"]["pid"], record)
    chosen = list(first.values())
    if len(chosen) > count:
        chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, count).round().astype(int)]
    return chosen


def _sample_images(records: Sequence[dict], shard_of: dict[str, Path]) -> dict[str, dict[str, bytes]]:
    """Encoded members (image, condition maps) of the given samples, reading only their shards."""
    wanted = {record["key"] for record in records}
    members: dict[str, dict[str, bytes]] = {key: {} for key in wanted}
    for shard in sorted({shard_of[key] for key in wanted}):
        for key, field, data in iter_shard_members(shard):
            if key in wanted and field != "json":
                members[key][field] = data
    return members


def plot_samples(recipe: Recipe, records: Sequence[dict], shard_of: dict[str, Path], path: Path) -> Path:
    """One row per sample: the reference, each stored condition map and the generated image, titled with
    the identity, the virtual camera and the generated image's filter score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    members = _sample_images(records, shard_of)
    source_root = recipe.resolve(recipe.source.root)
    columns = ["reference", *recipe.output.condition_maps, "generated"]
    figure, axes = plt.subplots(len(records), len(columns), figsize=(1.25 * len(columns), 2.3 * len(records)),
                                squeeze=False)
    for row, record in enumerate(records):
        fields = members[record["key"]]
        reference = source_root / record["source"]["image"]
        images = {
            "reference": Image.open(reference) if reference.is_file() else None,
            **{name: Image.open(io.BytesIO(fields[paths.condition_member(name)])) for name in recipe.output.condition_maps},
            "generated": Image.open(io.BytesIO(fields[recipe.output.image_format])),
        }
        for column, name in enumerate(columns):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if images[name] is None:
                axis.text(0.5, 0.5, "not found", ha="center", va="center", fontsize=6, transform=axis.transAxes)
            else:
                axis.imshow(images[name].convert("RGB"))
            if row == 0:
                axis.set_title(name, fontsize=7)
        camera, generated = record["camera"], record["filter"]["generated"]
        axes[row, 0].set_ylabel(
            f"id {record['source']['pid']}\naz {camera['azimuth_deg']:.0f} el {camera['elevation_deg']:.0f}\n"
            f"conf {generated['score']:.2f}",
            fontsize=6,
        )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_quality(quality: "ReleaseQuality", path: Path) -> Path:
    """Three panels: each filter stage's pass rate, eq. 12's pose differences and the identity similarity
    (accepted and rejected after generation, on the report's fixed bins); a fourth, the Re-ID similarity,
    when the recipe names a Re-ID encoder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reid = quality.reid_similarity
    figure, axes = plt.subplots(1, 3 if reid is None else 4, figsize=(11 if reid is None else 14.5, 3))
    stages, difference, identity = axes[:3]
    names = list(quality.stages)
    stages.bar(names, [quality.stages[name].rate or 0.0 for name in names], color="tab:blue")
    stages.set_ylim(0, 1)
    stages.set_title("pass rate per filter stage", fontsize=9)

    def histogram(axis, split, title: str) -> None:
        for label, summary, colour in (("accepted", split.accepted, "tab:green"),
                                       ("rejected", split.rejected, "tab:red")):
            edges = np.asarray(summary.edges)
            axis.stairs(summary.counts, edges, label=f"{label} ({summary.count})", color=colour)
        axis.legend(fontsize=7)
        axis.set_title(title, fontsize=9)

    histogram(difference, quality.pose_difference, "eq. 12: mean |conf_gen - conf_tar|")
    if quality.identity_similarity is None:
        identity.text(0.5, 0.5, "identity similarity\nnot recorded", ha="center", va="center",
                      transform=identity.transAxes)
        identity.set_xticks([])
        identity.set_yticks([])
    else:
        histogram(identity, quality.identity_similarity,
                  f"identity similarity ({quality.identity_similarity.encoder})")
    if reid is not None:
        histogram(axes[3], reid, f"Re-ID similarity ({reid.encoder})")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
