"""PNG plots of pose statistics in the manner of the paper's Figure 2: body orientation (i) and
pose distribution (ii), one panel per input and, with several inputs, one of them combined."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .orientation import AZIMUTH_BINS, azimuth_histogram

_TICKS = {0: "front\n0°", 90: "left side\n90°", 180: "back\n180°", 270: "right side\n270°"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fractions(azimuths: np.ndarray) -> tuple[np.ndarray, int]:
    counts = np.asarray(azimuth_histogram(np.asarray(azimuths, dtype=np.float64).tolist()))
    return counts / max(counts.sum(), 1), int(counts.sum())


def _polar_histogram(ax, azimuths: np.ndarray, title: str, color: str = "tab:blue",
                     requested: np.ndarray | None = None) -> None:
    """Bars: estimated azimuths; with ``requested``, a black outline of the virtual cameras' azimuths."""
    width = 2 * np.pi / AZIMUTH_BINS
    fractions, count = _fractions(azimuths)
    centres = np.arange(AZIMUTH_BINS) * width
    ax.bar(centres, fractions, width=width * 0.92, color=color, alpha=0.8, edgecolor="white", label="estimated")
    top = float(fractions.max())
    if requested is not None:
        wanted, _ = _fractions(requested)
        ax.bar(centres, wanted, width=width * 0.92, fill=False, edgecolor="black", linewidth=1.0, label="requested")
        top = max(top, float(wanted.max()))
        title += "\nbars: estimated, outline: requested camera"
    if top > 0:
        ax.set_ylim(0, top * 1.05)
        ax.set_yticks([round(top / 2, 2), round(top, 2)])
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(1)
    ax.set_xticks(np.radians(list(_TICKS)))
    ax.set_xticklabels(list(_TICKS.values()), fontsize=7)
    ax.tick_params(axis="y", labelsize=6, labelcolor="dimgray")
    ax.tick_params(axis="x", pad=4)
    ax.set_rlabel_position(202.5)
    ax.set_title(f"{title}\n(n = {count})", fontsize=9, pad=18)


def plot_orientation(path: Path, inputs: Sequence[tuple[str, np.ndarray, np.ndarray | None]]) -> Path:
    """Polar histograms of body azimuth (fraction of images per 30° bin) per input, plus combined;
    an input's ``requested`` azimuths (a release's virtual cameras) are outlined over its bars."""
    plt = _pyplot()
    panels = list(inputs)
    if len(panels) > 1:
        panels.append(("combined", np.concatenate([a for _, a, _ in inputs]), None))
    fig, axes = plt.subplots(1, len(panels), subplot_kw={"projection": "polar"},
                             figsize=(max(3.8 * len(panels), 5.0), 4.8), squeeze=False, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (ax, (name, azimuths, requested)) in enumerate(zip(axes[0], panels)):
        combined = len(inputs) > 1 and i == len(panels) - 1
        _polar_histogram(ax, azimuths, name, "tab:gray" if combined else colors[i % len(colors)], requested)
    fig.suptitle("Body orientation relative to the camera\n(fraction of images per 30° bin)", fontsize=11)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_poses(path: Path, inputs: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> Path:
    """2D PCA of normalised poses: one panel per input coloured by camera, plus all inputs together."""
    plt = _pyplot()
    panels = len(inputs) + (1 if len(inputs) > 1 else 0)
    fig, axes = plt.subplots(1, panels, figsize=(max(4.2 * panels, 5.0), 4.4), squeeze=False, sharex=True, sharey=True,
                             layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (name, points, cameras) in zip(axes[0], inputs):
        ok = ~np.isnan(points).any(axis=1)
        unique = sorted(set(cameras[ok].tolist()))
        for j, camera in enumerate(unique):
            mask = ok & (cameras == camera)
            ax.scatter(points[mask, 0], points[mask, 1], s=6, alpha=0.6, color=colors[j % len(colors)],
                       label=camera if len(unique) > 1 else None)
        if 1 < len(unique) <= 12:
            ax.legend(fontsize=6, markerscale=2, loc="best")
        ax.set_title(f"{name} (n = {int(ok.sum())})", fontsize=9)
        ax.set_xlabel("pose PC 1", fontsize=8)
        ax.set_ylabel("pose PC 2", fontsize=8)
    if len(inputs) > 1:
        ax = axes[0][-1]
        for i, (name, points, _) in enumerate(inputs):
            ok = ~np.isnan(points).any(axis=1)
            ax.scatter(points[ok, 0], points[ok, 1], s=6, alpha=0.5, color=colors[i % len(colors)], label=name)
        ax.legend(fontsize=7, markerscale=2)
        ax.set_title("combined", fontsize=9)
        ax.set_xlabel("pose PC 1", fontsize=8)
    fig.suptitle("Distribution of normalised 2D poses (PCA)", fontsize=11)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_cameras(path: Path, name: str, per_camera: dict[str, np.ndarray]) -> Path:
    """One polar azimuth histogram per camera of one input: how each camera sees people."""
    plt = _pyplot()
    cameras = list(per_camera)
    columns = min(len(cameras), 4)
    rows = (len(cameras) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, subplot_kw={"projection": "polar"},
                             figsize=(3.6 * columns, 4.2 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(cameras):]:
        ax.set_visible(False)
    for ax, camera in zip(axes.flat, cameras):
        _polar_histogram(ax, per_camera[camera], f"camera {camera}")
    fig.suptitle(f"{name}: body orientation per camera", fontsize=11)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
