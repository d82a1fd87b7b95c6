"""The body-shape panel of a recipe before it is built (``posedive report``): each planned identity's
body shape from the shape stage (fitted, drawn or fixed, exactly as the build will ask for it; fits
are cached by content, so the build reads them back) and, for a few identities, the reference's
silhouette beside a target body rendered for it with the plan's own pose and camera."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..schema import ConditionRequest
from .body_panel import (
    BodyShapePanel,
    identity_bodies,
    off_axis_deg,
    paired_identities,
    plot_body_panel,
    target_silhouette,
)

Segmenter = Callable[[Sequence[np.ndarray]], list]
"""RGB uint8 images -> their person silhouettes (boolean masks, or None where no person is found)."""


def planned_body_panel(recipe, pose_ids: Sequence[str], renderer, shapes, path: Path,
                       segmenter: Segmenter | None = None) -> BodyShapePanel:
    """Write the panel of ``recipe``'s plan to ``path`` and return its numbers.

    ``renderer``: a ``ConditionRenderer`` of the recipe; ``shapes``: its shape stage (None for
    ``body.shape: fixed``, the renderer's one body); ``segmenter``: draws the reference silhouettes
    (none are drawn without one)."""
    from PIL import Image

    from ..plan import make_plan
    from ..sources import read_source

    source = read_source(recipe.source, recipe.base_dir)
    plan = make_plan(recipe, source, list(pose_ids))
    train = source.train_by_pid()
    pids = sorted({unit.pid for unit in plan.units})
    records = {pid: _shape_record(shapes, pid, [r.path for r in train.get(pid, [])]) for pid in pids}
    panel = identity_bodies(records).model_copy(update={"paired": paired_identities(pids)})

    chosen = {}
    for unit in plan.units:  # the identity's first attempt nearest a front or back view
        attempt = unit.attempts[0]
        best = chosen.get(unit.pid)
        if unit.pid in panel.paired and (best is None or off_axis_deg(attempt.azimuth_deg, attempt.elevation_deg)
                                         < off_axis_deg(best.azimuth_deg, best.elevation_deg)):
            chosen[unit.pid] = attempt
    paired = [pid for pid in panel.paired if pid in chosen]
    requests = [ConditionRequest(pose_id=chosen[pid].pose_id, elevation_deg=chosen[pid].elevation_deg,
                                 azimuth_deg=chosen[pid].azimuth_deg, shape=_request_shape(records[pid]))
                for pid in paired]
    targets = [target_silhouette({"depth": conditions.depth}) for conditions in renderer.render(requests)]
    references: list = [None] * len(paired)
    if segmenter is not None and paired:
        root = recipe.resolve(recipe.source.root)
        references = segmenter([np.asarray(Image.open(root / chosen[pid].reference).convert("RGB")) for pid in paired])
    plot_body_panel(panel, {pid: pair for pid, pair in zip(paired, zip(references, targets))}, path,
                    title=f"planned body shapes of the {len(pids)} identities ({recipe.body.model}, "
                          f"body.shape: {recipe.body.shape})")
    return panel


def _shape_record(shapes, pid: int, images: Sequence[Path]) -> dict:
    record = shapes.shape(pid, images) if shapes is not None else None
    if record is None:
        return {"source": "fixed", "labels": [], "values": []}
    return record.model_dump(mode="json")


def _request_shape(record: dict) -> tuple[float, ...] | None:
    # As the build asks: the renderer's own body when the recipe fixes it, the identity's values otherwise.
    return tuple(record["values"]) if record["source"] != "fixed" else None


__all__ = ["planned_body_panel"]
