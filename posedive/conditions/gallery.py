"""The target condition gallery (paper section 4.1, step 2): many condition sets rendered once.

``gallery_requests`` samples (pose, elevation, azimuth) triples uniformly from a recipe's pose bank
and viewpoint ranges, seeded by the recipe; ``render_gallery`` renders requests into the
content-addressed cache in parallel worker processes (``posedive.parallel``: one body model and one
GL context each, one thread each), skipping what is cached; ``contact_sheet`` lays condition sets out
in one PNG for people to check (posedive's own maps, or the maps a generator's contract reads, as the
caller's ``views`` give them).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..parallel import Backend, Emit, InProcess, LocalProcesses, WorkerFactory
from ..schema import ConditionRequest, ConditionSet
from .renderer import BodyConditionRenderer, RendererSpec, renderer_spec

logger = logging.getLogger(__name__)


def gallery_seed(recipe, salt: str = "gallery") -> int:
    """A seed derived from the recipe hash, so a recipe always samples the same gallery."""
    return int.from_bytes(hashlib.sha256(f"{recipe.hash}:{salt}".encode()).digest()[:8], "little")


def sample_requests(
    pose_ids: Sequence[str],
    count: int,
    elevation_range: Sequence[float],
    azimuth_range: Sequence[float],
    rng: np.random.Generator,
) -> list[ConditionRequest]:
    """``count`` requests: poses uniform over the bank, elevation and azimuth uniform over the ranges."""
    if not pose_ids:
        raise ValueError("the pose bank is empty")
    poses = rng.integers(0, len(pose_ids), size=count)
    elevation = rng.uniform(elevation_range[0], elevation_range[1], size=count)
    azimuth = rng.uniform(azimuth_range[0], azimuth_range[1], size=count)
    return [
        ConditionRequest(pose_id=pose_ids[p], elevation_deg=float(e), azimuth_deg=float(a))
        for p, e, a in zip(poses, elevation, azimuth)
    ]


def gallery_requests(recipe, count: int, pose_ids: Sequence[str]) -> list[ConditionRequest]:
    """The recipe's gallery of ``count`` condition requests (deterministic for a recipe)."""
    rng = np.random.default_rng(gallery_seed(recipe))
    return sample_requests(pose_ids, count, recipe.viewpoint.elevation_deg, recipe.viewpoint.azimuth_deg, rng)


class ChunkRenderer:
    """A ``posedive.parallel`` worker: renders chunks of requests into the cache with one renderer
    (one body model and one GL context per worker process)."""

    def __init__(self, renderer: BodyConditionRenderer) -> None:
        self.renderer = renderer

    @classmethod
    def for_spec(cls, spec: RendererSpec) -> "ChunkRenderer":
        return cls(BodyConditionRenderer(spec))

    def __call__(self, requests: list[ConditionRequest], emit: Emit) -> list[str]:
        return [c.condition_id for c in self.renderer.render(requests)]

    def close(self) -> None:
        self.renderer.close()


def render_gallery(
    spec: RendererSpec,
    requests: Sequence[ConditionRequest],
    *,
    workers: int | None = None,
    chunk_size: int = 8,
    progress: bool = True,
) -> list[str]:
    """Render ``requests`` into the cache, ``workers`` processes (default: all cores); returns the
    condition ids in request order. Cached conditions are not rendered again."""
    if spec.cache_root is None:
        raise ValueError("render_gallery needs a cache (RendererSpec.cache_root)")
    index = BodyConditionRenderer(spec)
    ids = [index.condition_id(r) for r in requests]
    todo: dict[str, ConditionRequest] = {}
    for request, key in zip(requests, ids):
        if not index.cache.has(key):
            todo.setdefault(key, request)
    logger.info("gallery: %d requests, %d distinct, %d to render", len(requests), len(set(ids)), len(todo))
    if not todo:
        return ids
    pending = list(todo.values())
    chunks = [pending[i : i + chunk_size] for i in range(0, len(pending), chunk_size)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(chunks)))

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("rendering conditions"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=not progress
    ) as bar:
        task = bar.add_task("render", total=len(pending))
        if workers == 1:
            backend: Backend = InProcess()
            worker: WorkerFactory[list[ConditionRequest], list[str]] = functools.partial(ChunkRenderer, index)
        else:  # processes of one CPU each, each with a GL context of its own
            backend, worker = LocalProcesses(workers), functools.partial(ChunkRenderer.for_spec, spec)
        for done in backend.map(worker, chunks, ordered=False):
            bar.advance(task, len(done))
    return ids


def load_gallery(spec: RendererSpec, requests: Sequence[ConditionRequest]) -> list[ConditionSet]:
    """Condition sets for requests (from the cache where rendered, rendering the rest here)."""
    with BodyConditionRenderer(spec) as renderer:
        return renderer.render(requests)


ConditionViews = Callable[[ConditionSet], "list[tuple[str, np.ndarray]]"]


def own_views(conditions: ConditionSet) -> list[tuple[str, np.ndarray]]:
    """posedive's own maps: depth, normal, and the skeleton drawn over the (dimmed) normal map."""
    overlay = np.where(conditions.skeleton.any(axis=2, keepdims=True), conditions.skeleton, conditions.normal // 2)
    return [("depth", np.repeat(conditions.depth[..., None], 3, axis=2)), ("normal", conditions.normal),
            ("skeleton over normal", overlay)]


SHEET_HEADER = 16  # the line of map labels over the sheet
SHEET_PAD = 6


def tile_origin(index: int, columns: int, cell_w: int, cell_h: int) -> tuple[int, int]:
    """Where the first tile of the ``index``-th condition set of a contact sheet lies."""
    return SHEET_PAD + (index % columns) * cell_w, SHEET_HEADER + SHEET_PAD + (index // columns) * cell_h


def contact_sheet(conditions: Sequence[ConditionSet], path: Path, *, columns: int = 4, scale: float = 0.5,
                  views: ConditionViews = own_views) -> Path:
    """One PNG with, per condition set, its ``views`` side by side (by default :func:`own_views`; a
    generator's contract gives the maps it reads), captioned with the pose id and viewpoint; the views'
    labels head the sheet."""
    from PIL import Image, ImageDraw

    if not conditions:
        raise ValueError("contact sheet: no condition sets")
    tiles_of = [views(c) for c in conditions]
    heading = " | ".join(label for label, _ in tiles_of[0])
    count = len(tiles_of[0])
    h, w = conditions[0].depth.shape
    tw, th = max(1, int(w * scale)), max(1, int(h * scale))
    caption, pad = 26, SHEET_PAD
    cell_w, cell_h = count * tw + (count - 1) * 2 + pad, th + caption + pad
    rows = (len(conditions) + columns - 1) // columns
    heading_w = int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(heading)) + 2 * pad
    sheet = Image.new("RGB", (max(columns * cell_w + pad, heading_w), SHEET_HEADER + rows * cell_h + pad), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 2), heading, fill=(230, 230, 230))
    for n, (c, tiles) in enumerate(zip(conditions, tiles_of)):
        x0, y0 = tile_origin(n, columns, cell_w, cell_h)
        for k, (_, tile) in enumerate(tiles):
            image = Image.fromarray(tile).resize((tw, th), Image.BILINEAR)
            sheet.paste(image, (x0 + k * (tw + 2), y0))
        label = f"{c.body.pose_id}\nel {c.camera.elevation_deg:.0f}  az {c.camera.azimuth_deg:.0f}"
        draw.multiline_text((x0, y0 + th + 1), label, fill=(230, 230, 230), spacing=1)
    import io

    from ..files import atomic_write_bytes

    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def spec_for(recipe, cache_root: Path | None = None) -> RendererSpec:
    return renderer_spec(recipe, cache_root=cache_root)
