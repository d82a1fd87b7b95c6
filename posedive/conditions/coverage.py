"""Coverage of the sampled conditions, as in the paper's Figure 2: where the cameras stood and which
poses were drawn, plus one number for the viewpoint spread.

* Viewpoints: a 2D histogram over azimuth x elevation within the recipe's ranges.
* Coverage number: the Shannon entropy of that histogram divided by its maximum ``log(bins)``, so
  1.0 means every (azimuth, elevation) cell is equally filled and 0.0 means one cell holds all.
* Poses: a 2D embedding of the heading-free posed skeletons (PCA, computed with an SVD: it is
  deterministic and needs no extra package, where the paper shows t-SNE), coloured by each pose's
  shown tag (its activity, such as walk or dance, else how it stands, such as upright).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from .. import paths
from ..geometry.rotations import heading_normalised, smpl_skeleton
from .body_panel import BodyShapePanel
from .posebank.tags import SHOWN_TAGS, shown_tag

DEFAULT_BINS = (12, 6)  # azimuth x elevation


class CoverageSummary(BaseModel):
    """What ``posedive report`` prints and writes beside the pictures."""

    model_config = ConfigDict(extra="forbid")

    samples: int
    distinct_poses: int
    azimuth_bins: int
    elevation_bins: int
    viewpoint_entropy: float  # normalised to [0, 1]
    pose_tags: dict[str, int] = {}  # samples per shown tag (the colours of the pose plot)
    viewpoint_plot: str | None = None
    pose_plot: str | None = None
    body_plot: str | None = None
    bodies: BodyShapePanel | None = None  # the body-shape panel's numbers (posedive.conditions.body_panel)


def viewpoint_histogram(
    elevation_deg: np.ndarray,
    azimuth_deg: np.ndarray,
    elevation_range: Sequence[float],
    azimuth_range: Sequence[float],
    bins: tuple[int, int] = DEFAULT_BINS,
) -> np.ndarray:
    """(azimuth bins, elevation bins) counts; values outside the ranges are clipped into them."""
    az = np.clip(np.asarray(azimuth_deg, dtype=np.float64), azimuth_range[0], azimuth_range[1])
    el = np.clip(np.asarray(elevation_deg, dtype=np.float64), elevation_range[0], elevation_range[1])
    az_edges = np.linspace(azimuth_range[0], azimuth_range[1] + 1e-9, bins[0] + 1)
    el_edges = np.linspace(elevation_range[0], elevation_range[1] + 1e-9, bins[1] + 1)
    if elevation_range[0] == elevation_range[1]:
        el_edges = np.linspace(elevation_range[0] - 0.5, elevation_range[0] + 0.5, bins[1] + 1)
    if azimuth_range[0] == azimuth_range[1]:
        az_edges = np.linspace(azimuth_range[0] - 0.5, azimuth_range[0] + 0.5, bins[0] + 1)
    histogram, _, _ = np.histogram2d(az, el, bins=[az_edges, el_edges])
    return histogram


def normalised_entropy(histogram: np.ndarray) -> float:
    """Entropy of a histogram over its maximum ``log(cells)``: 1 uniform, 0 a single cell."""
    counts = np.asarray(histogram, dtype=np.float64).ravel()
    if counts.size < 2 or counts.sum() <= 0:
        return 0.0
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(counts.size))


def pose_embedding(poses: np.ndarray) -> np.ndarray:
    """(N, 72) poses -> (N, 2) principal-component coordinates of their heading-free skeletons."""
    features = smpl_skeleton(heading_normalised(poses)).reshape(len(poses), -1)
    centred = features - features.mean(axis=0)
    if len(poses) < 2:
        return np.zeros((len(poses), 2))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), range(coords.shape[1])])  # fix SVD sign
    return coords * np.where(signs == 0, 1.0, signs)


def plot_viewpoints(histogram: np.ndarray, elevation_range, azimuth_range, entropy: float, path: Path) -> Path:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.2), dpi=120)
    axes = figure.add_subplot()
    extent = (azimuth_range[0], azimuth_range[1], elevation_range[0], elevation_range[1])
    image = axes.imshow(histogram.T, origin="lower", aspect="auto", extent=extent, cmap="viridis")
    figure.colorbar(image, ax=axes, label="conditions")
    axes.set_xlabel("azimuth (deg, 0 = front, 90 = body's left)")
    axes.set_ylabel("elevation (deg)")
    axes.set_title(f"sampled viewpoints (coverage entropy {entropy:.3f})")
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": "posedive"})  # fixed bytes for the same data
    return Path(path)


def tag_colours(groups: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """The RGBA colour of each shown tag in ``groups``, in legend order (``SHOWN_TAGS`` first, then the
    other names sorted). A known tag has one colour in every plot (a release's and ``posedive
    report``'s): its place in ``SHOWN_TAGS`` on the ``tab20`` palette; other names take the places after."""
    from matplotlib import colormaps

    order = {tag: position for position, tag in enumerate(SHOWN_TAGS)}
    names = sorted(set(groups), key=lambda name: (order.get(name, len(order)), name))
    palette = colormaps["tab20"]
    return {name: tuple(palette(order.get(name, len(order) + k) % 20)) for k, name in enumerate(names)}


def plot_poses(coords: np.ndarray, groups: Sequence[str], path: Path) -> Path:
    """The pose embedding, one dot per pose coloured by its shown tag (``tag_colours``)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.6, 4.8), dpi=120)
    axes = figure.add_subplot()
    colours = tag_colours(groups)
    groups = np.asarray(groups)
    for name, colour in colours.items():
        chosen = groups == name
        axes.scatter(coords[chosen, 0], coords[chosen, 1], s=6, color=colour, label=f"{name} ({int(chosen.sum())})")
    axes.set_xlabel("pose PC 1")
    axes.set_ylabel("pose PC 2")
    axes.set_title("sampled poses by tag (PCA of heading-free skeletons)")
    if len(colours) <= 20:
        axes.legend(fontsize=6, markerscale=2, loc="best")
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": "posedive"})  # fixed bytes for the same data
    return Path(path)


def coverage_report(
    requests,
    bank,
    *,
    elevation_range: Sequence[float],
    azimuth_range: Sequence[float],
    out_dir: Path | None = None,
    bins: tuple[int, int] = DEFAULT_BINS,
) -> CoverageSummary:
    """Coverage of ``ConditionRequest``s drawn from ``bank``; with ``out_dir``, also the two PNGs
    ``viewpoints.png`` and ``poses.png``."""
    if not requests:
        raise ValueError("coverage report: no condition requests")
    elevation = np.array([r.elevation_deg for r in requests])
    azimuth = np.array([r.azimuth_deg for r in requests])
    histogram = viewpoint_histogram(elevation, azimuth, elevation_range, azimuth_range, bins)
    entropy = normalised_entropy(histogram)
    pose_ids = [r.pose_id for r in requests]
    shown = [shown_tag(bank.tags_of(p)) for p in pose_ids]
    summary = CoverageSummary(
        samples=len(requests),
        distinct_poses=len(set(pose_ids)),
        azimuth_bins=bins[0],
        elevation_bins=bins[1],
        viewpoint_entropy=round(entropy, 6),
        pose_tags=dict(sorted(Counter(shown).items())),
    )
    if out_dir is None:
        return summary
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    view_path = plot_viewpoints(histogram, elevation_range, azimuth_range, entropy, out_dir / paths.COVERAGE_VIEWPOINTS_PLOT)
    poses = np.stack([bank.pose(p) for p in pose_ids])
    pose_path = plot_poses(pose_embedding(poses), shown, out_dir / paths.COVERAGE_POSES_PLOT)
    return summary.model_copy(update={"viewpoint_plot": str(view_path), "pose_plot": str(pose_path)})
