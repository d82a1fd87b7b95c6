"""Plots stored in a release: where the accepted samples' cameras stood (azimuth x elevation) and
which poses they show (Figure 2 of the paper), drawn with the conditions stage's coverage functions.

They are drawn from the provenance in the shards, so they show what the release holds, not what was
planned; the pose embedding uses the SMPL-24 pose each sample records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import paths
from ..recipe import Recipe
from ..shards import iter_provenance


@dataclass
class ReleaseCoverage:
    plots: list[str]
    viewpoint_entropy: float


def _pose_group(pose_id: str) -> str:
    """``deepmimic-walk-00012-mirror`` -> ``deepmimic-walk``: the clip a pose comes from."""
    return "-".join(part for part in pose_id.split("-") if not part.isdigit() and part != "mirror") or pose_id


def write_release_plots(recipe: Recipe, root: Path, shard_paths: list[Path]) -> ReleaseCoverage:
    from ..conditions.coverage import (
        normalised_entropy,
        plot_poses,
        plot_viewpoints,
        pose_embedding,
        viewpoint_histogram,
    )

    records = list(iter_provenance(shard_paths))
    if not records:
        return ReleaseCoverage(plots=[], viewpoint_entropy=0.0)
    elevation = np.array([r["camera"]["elevation_deg"] for r in records])
    azimuth = np.array([r["camera"]["azimuth_deg"] for r in records])
    ranges = recipe.viewpoint.elevation_deg, recipe.viewpoint.azimuth_deg
    histogram = viewpoint_histogram(elevation, azimuth, *ranges)
    entropy = normalised_entropy(histogram)
    (root / paths.PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    viewpoints, poses = f"{paths.PLOTS_DIR}/viewpoints.png", f"{paths.PLOTS_DIR}/poses.png"
    plot_viewpoints(histogram, *ranges, entropy, root / viewpoints)
    pose_array = np.array([r["body"]["pose"] for r in records], dtype=np.float64)
    plot_poses(pose_embedding(pose_array), [_pose_group(r["body"]["pose_id"]) for r in records], root / poses)
    return ReleaseCoverage(plots=[viewpoints, poses], viewpoint_entropy=round(entropy, 6))
