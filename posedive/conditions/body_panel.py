"""The body-shape panel: which body each identity is rendered with, and whether it looks like the person.

Two parts, drawn into one picture (``plot_body_panel``) by a release (from its samples' provenance and
stored condition maps) and by ``posedive report`` (from the shape stage, before a build):

* the distribution over identities of each shape value (anny's phenotypes, SMPL's betas), one dot
  per identity, coloured by where its values came from (the fit to its images, a population draw,
  the recipe's one body);
* for a few identities, the reference person's silhouette (BlazePose's person segmentation, the
  mask the shape fit measures) beside the silhouette of the target body rendered for it (the
  non-background pixels of its depth map), so a reader sees whether broad and slim people get
  broad and slim bodies.

The data is a Pydantic model (``BodyShapePanel``) so that what the picture shows can be checked
against the provenance without reading pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

PAIRS_SHOWN = 4
# Colours of a value's origin (``BodyShapeRecord.source``), the same in every panel.
SOURCE_COLOURS: dict[str, str] = {"reference": "tab:blue", "sampled": "tab:orange", "fixed": "tab:grey"}
MASK_THRESHOLD = 0.5  # BlazePose's segmentation is a person probability


class IdentityBody(BaseModel):
    """One identity's body shape, as its ``BodyShapeRecord`` gives it."""

    model_config = ConfigDict(extra="forbid")

    pid: int
    source: str  # "reference" (fitted), "sampled" (population draw, also a fit's fallback) or "fixed"
    values: list[float]
    confidence: float | None = None
    fell_back: bool = False


class BodyShapePanel(BaseModel):
    """The panel's numbers: per identity its shape values (in the order of ``labels``), and the
    identities whose silhouette pairs are drawn."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str]
    identities: list[IdentityBody]
    paired: list[int] = []

    def values_of(self, label: str) -> dict[int, float]:
        column = self.labels.index(label)
        return {identity.pid: identity.values[column] for identity in self.identities
                if column < len(identity.values)}


def identity_bodies(shapes: Mapping[int, Mapping]) -> BodyShapePanel:
    """The panel of ``shapes``: pid -> ``BodyShapeRecord`` (as a model or its JSON dict), sorted by pid.

    The labels are those of the first identity that has values (one recipe renders one body model)."""
    records = {pid: record if isinstance(record, Mapping) else record.model_dump(mode="json")
               for pid, record in shapes.items()}
    labels = next((list(r["labels"]) for r in records.values() if r.get("values")), [])
    identities = [IdentityBody(pid=int(pid), source=r["source"], values=[float(v) for v in r.get("values", [])],
                               confidence=r.get("confidence"), fell_back=bool(r.get("fell_back", False)))
                  for pid, r in sorted(records.items())]
    return BodyShapePanel(labels=labels, identities=identities)


def paired_identities(pids: Sequence[int], count: int = PAIRS_SHOWN) -> list[int]:
    """The identities whose silhouettes are shown: ``count`` spread evenly over the sorted pids (the
    same release or recipe always shows the same ones)."""
    ordered = sorted(set(int(pid) for pid in pids))
    if len(ordered) <= count:
        return ordered
    return [ordered[i] for i in np.linspace(0, len(ordered) - 1, count).round().astype(int)]


def off_axis_deg(azimuth_deg: float, elevation_deg: float) -> float:
    """How far a camera is from looking straight at the body's front or back (degrees of azimuth away
    from 0 or 180, plus elevation): Re-ID crops are mostly such views, so the pair's target is the
    identity's view nearest to one."""
    azimuth = azimuth_deg % 180.0
    return min(azimuth, 180.0 - azimuth) + abs(elevation_deg)


def target_silhouette(maps: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The rendered body's silhouette: the non-background pixels of its depth map (else of its normal
    map; both have a zero background). None when neither map is at hand."""
    for name in ("depth", "normal"):
        if name in maps:
            array = np.asarray(maps[name])
            return (array.reshape(array.shape[0], array.shape[1], -1) > 0).any(axis=2)
    return None


def reference_silhouette(segmentation: np.ndarray | None) -> np.ndarray | None:
    """The reference person's silhouette from BlazePose's person probability (None: no person found)."""
    if segmentation is None:
        return None
    return np.asarray(segmentation, dtype=np.float32) >= MASK_THRESHOLD


def segment_references(images: Sequence[np.ndarray], estimator=None) -> list[np.ndarray | None]:
    """Silhouettes of RGB uint8 ``images`` by BlazePose's segmentation (``estimator``: a
    ``BlazePoseEstimator(segmentation=True)``; one is made and closed here when not given)."""
    from ..pose.blazepose import BlazePoseEstimator

    owned = estimator is None
    estimator = estimator or BlazePoseEstimator(segmentation=True)
    try:
        return [reference_silhouette(result.segmentation) for result in estimator.analyse(list(images))]
    finally:
        if owned:
            estimator.close()


def plot_body_panel(panel: BodyShapePanel, pairs: Mapping[int, tuple[np.ndarray | None, np.ndarray | None]],
                    path: Path, title: str = "body shapes over identities") -> Path:
    """Top: each shape value over identities (one dot per identity, coloured by its origin).
    Bottom: for each identity of ``panel.paired``, ``pairs[pid]`` = (reference silhouette, target
    silhouette), boolean masks or None where none is at hand."""
    from matplotlib.figure import Figure

    columns = max(2 * len(panel.paired), 2)
    figure = Figure(figsize=(max(6.4, 1.1 * columns), 5.6), dpi=110)
    grid = figure.add_gridspec(2, columns, height_ratios=(1.0, 1.3))
    values = figure.add_subplot(grid[0, :])
    _plot_values(values, panel)
    values.set_title(title, fontsize=9)
    for index, pid in enumerate(panel.paired):
        reference, target = pairs.get(pid, (None, None))
        for offset, (mask, name) in enumerate(((reference, "reference"), (target, "target"))):
            axis = figure.add_subplot(grid[1, 2 * index + offset])
            axis.set_xticks([])
            axis.set_yticks([])
            if mask is None:
                axis.text(0.5, 0.5, "none", ha="center", va="center", fontsize=7, transform=axis.transAxes)
            else:
                axis.imshow(np.asarray(mask, dtype=np.float32), cmap="gray_r", vmin=0, vmax=1)
            axis.set_title(f"id {pid} {name}", fontsize=7)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": "posedive"})  # fixed bytes for the same data
    return path


def _plot_values(axis, panel: BodyShapePanel) -> None:
    if not panel.labels:
        axis.text(0.5, 0.5, "every identity has the renderer's one body (body.shape: fixed)", ha="center",
                  va="center", fontsize=8, transform=axis.transAxes)
        axis.set_xticks([])
        axis.set_yticks([])
        return
    # A fixed horizontal jitter per identity (its rank) keeps dots apart and the picture reproducible.
    jitter = np.linspace(-0.25, 0.25, max(len(panel.identities), 1))
    for source, colour in SOURCE_COLOURS.items():
        xs, ys = [], []
        for rank, identity in enumerate(panel.identities):
            if identity.source != source:
                continue
            for column, value in enumerate(identity.values[:len(panel.labels)]):
                xs.append(column + jitter[rank])
                ys.append(value)
        if xs:
            count = sum(identity.source == source for identity in panel.identities)
            axis.scatter(xs, ys, s=10, color=colour, label=f"{source} ({count})")
    axis.set_xticks(range(len(panel.labels)))
    axis.set_xticklabels(panel.labels, fontsize=7, rotation=20)
    axis.set_ylabel("value", fontsize=8)
    axis.legend(fontsize=7, loc="best")


__all__ = ["BodyShapePanel", "IdentityBody", "identity_bodies", "off_axis_deg", "paired_identities", "plot_body_panel",
           "reference_silhouette", "segment_references", "target_silhouette"]
