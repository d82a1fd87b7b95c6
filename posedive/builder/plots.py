"""Plots stored in a release: where the accepted samples' cameras are (azimuth x elevation).

Drawn from the provenance in the shards, so they show what the release holds, not what was planned.
PNG metadata is fixed so that the same release always gives the same bytes (the manifest hashes them).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np

from .. import paths


def read_cameras(shard_paths: list[Path]) -> np.ndarray:
    """(N, 2) azimuth, elevation in degrees of every sample in the shards."""
    angles = []
    for shard in shard_paths:
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    camera = json.loads(tar.extractfile(member).read())["camera"]
                    angles.append((camera["azimuth_deg"], camera["elevation_deg"]))
    return np.asarray(angles, dtype=np.float64).reshape(-1, 2)


def plot_viewpoints(azimuth: np.ndarray, elevation: np.ndarray, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.2), dpi=100)
    axis.hist2d(azimuth, elevation, bins=(36, 9), range=((0, 360), (min(0.0, elevation.min(initial=0)), 90)), cmap="viridis")
    axis.set_xlabel("azimuth (deg)")
    axis.set_ylabel("elevation (deg)")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(out, format="png", metadata={"Software": None})
    plt.close(figure)


def write_release_plots(root: Path, shard_paths: list[Path]) -> list[str]:
    angles = read_cameras(shard_paths)
    relpath = f"{paths.PLOTS_DIR}/viewpoints.png"
    (root / paths.PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    plot_viewpoints(angles[:, 0], angles[:, 1], root / relpath, title=f"{len(angles)} accepted samples")
    return [relpath]
