"""Where lines through a person's silhouette run inside it: the raw measurements of body shape.

Along a line ``origin + s * direction`` (pixels) the silhouette covers a set of intervals of ``s``
(*runs*). Body-shape estimation reads two things off runs: how much of a window across the body is
covered (a width; both legs, or a torso with an arm beside it, add up, so the number changes
smoothly when limbs touch or separate), and where the silhouette ends (the top of the head, the
feet). Two sources answer for the same lines:

* a soft person mask (BlazePose's segmentation, values in [0, 1]): sampled bilinearly along the
  line; runs are where it exceeds ``threshold``, their ends interpolated between samples;
* the body model's triangles projected to pixels, without rasterising: every triangle a line
  crosses contributes the interval it covers, and the intervals are merged. Exact, and continuous
  in the vertices, so finite differences over shape parameters are smooth.

Both clip lines to the image rectangle, so a person cut off by the crop border is measured alike on
both sides. Pixel coordinates are continuous: pixel ``(i, j)``'s centre is at ``(j + 0.5, i + 0.5)``,
the convention of BlazePose's landmarks and of the cameras.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOUCH_PX = 1e-6


@dataclass(frozen=True)
class Lines:
    """``L`` measuring lines: points ``origins + s * directions`` for ``|s| <= reach`` (pixels)."""

    origins: np.ndarray  # (L, 2)
    directions: np.ndarray  # (L, 2), unit
    reach: np.ndarray  # (L,)

    def __post_init__(self) -> None:
        if self.origins.shape != self.directions.shape or self.origins.shape[0] != self.reach.shape[0]:
            raise ValueError(
                f"lines: origins {self.origins.shape}, directions {self.directions.shape} and reach "
                f"{self.reach.shape} disagree"
            )

    def __len__(self) -> int:
        return int(self.origins.shape[0])

    def limits(self, width: int, height: int) -> np.ndarray:
        """(L, 2) the part ``[s_min, s_max]`` of each line inside the image and its reach (NaN: none)."""
        low = -self.reach.astype(np.float64)
        high = self.reach.astype(np.float64).copy()
        for axis, size in ((0, width), (1, height)):
            o = self.origins[:, axis]
            d = self.directions[:, axis]
            moving = np.abs(d) > 1e-12
            safe = np.where(moving, d, 1.0)
            a, b = (0.0 - o) / safe, (size - o) / safe
            low = np.where(moving, np.maximum(low, np.minimum(a, b)), low)
            high = np.where(moving, np.minimum(high, np.maximum(a, b)), high)
            low = np.where(~moving & ((o < 0) | (o > size)), np.nan, low)
        empty = ~(low < high)
        return np.where(empty[:, None], np.nan, np.stack([low, high], axis=1))


@dataclass(frozen=True)
class Ladder:
    """Parallel lines across a body axis: line ``k`` passes through ``origin + offsets[k] * axis``
    in the direction ``across`` (perpendicular to ``axis``), and a width is measured within
    ``|s| <= window`` of the axis."""

    origin: np.ndarray  # (2,)
    axis: np.ndarray  # (2,) unit
    offsets: np.ndarray  # (K,) increasing, pixels along the axis
    window: float

    @property
    def across(self) -> np.ndarray:
        return np.array([-self.axis[1], self.axis[0]])

    def lines(self) -> Lines:
        count = len(self.offsets)
        origins = self.origin[None] + self.offsets[:, None] * self.axis[None]
        return Lines(origins, np.tile(self.across, (count, 1)), np.full(count, float(self.window)))


def merge(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(k, 2) disjoint sorted intervals covering the union of ``[starts, ends]``."""
    if starts.size == 0:
        return np.empty((0, 2))
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.ones(starts.size, dtype=bool)
    # A component starts beyond everything before it; triangles sharing an edge meet within rounding.
    new[1:] = starts[1:] > reach[:-1] + TOUCH_PX
    first = np.flatnonzero(new)
    return np.stack([starts[first], np.maximum.reduceat(ends, first)], axis=1)


def covered(runs: np.ndarray, low: float, high: float) -> float:
    """Length of ``[low, high]`` inside the silhouette."""
    if not len(runs):
        return 0.0
    return float(np.clip(np.minimum(runs[:, 1], high) - np.maximum(runs[:, 0], low), 0.0, None).sum())


def farthest(runs: np.ndarray) -> float:
    """Where the silhouette ends along the line (the last run's end); NaN when the line misses it."""
    return float(runs[-1, 1]) if len(runs) else float("nan")


def _crossings(along: np.ndarray, across: np.ndarray, faces: np.ndarray, pairs_face: np.ndarray, level: np.ndarray):
    """For (face, level) pairs: the interval of ``along`` where the face meets ``across == level``."""
    a = across[faces[pairs_face]] - level[:, None]  # (P, 3)
    s = along[faces[pairs_face]]
    points = []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        ha, hb = a[:, i], a[:, j]
        cuts = (ha <= 0.0) != (hb <= 0.0)
        t = np.where(cuts, ha / np.where(cuts, ha - hb, 1.0), np.nan)
        points.append(s[:, i] + t * (s[:, j] - s[:, i]))
    for i in range(3):
        points.append(np.where(a[:, i] == 0.0, s[:, i], np.nan))
    points = np.stack(points, axis=1)
    finite = np.isfinite(points)
    low = np.where(finite, points, np.inf).min(axis=1)
    high = np.where(finite, points, -np.inf).max(axis=1)
    return low, high, finite.any(axis=1)


def mesh_runs(pixels: np.ndarray, faces: np.ndarray, lines: Lines, width: int, height: int) -> list[np.ndarray]:
    """Per line, the (k, 2) runs of the silhouette of a mesh whose vertices project to ``pixels`` (V, 2)."""
    pixels = np.asarray(pixels, dtype=np.float64)
    limits = lines.limits(width, height)
    runs = []
    for index in range(len(lines)):
        low, high = limits[index]
        if not np.isfinite(low):
            runs.append(np.empty((0, 2)))
            continue
        direction = lines.directions[index]
        normal = np.array([-direction[1], direction[0]])
        offsets = pixels - lines.origins[index]
        across = offsets @ normal
        h = across[faces]
        hit = np.flatnonzero((h.min(axis=1) <= 0.0) & (h.max(axis=1) >= 0.0))
        start, end, valid = _crossings(offsets @ direction, across, faces, hit, np.zeros(hit.size))
        keep = valid & (end >= low) & (start <= high)
        runs.append(merge(np.maximum(start[keep], low), np.minimum(end[keep], high)))
    return runs


def mesh_widths(pixels: np.ndarray, faces: np.ndarray, ladder: Ladder, width: int, height: int) -> np.ndarray:
    """(K,) covered length of every rung of ``ladder`` across a projected mesh, within the window and
    the image; all rungs at once (each small triangle crosses at most a rung or two)."""
    pixels = np.asarray(pixels, dtype=np.float64)
    offsets = np.asarray(ladder.offsets, dtype=np.float64)
    relative = pixels - ladder.origin
    height_of = relative @ ladder.axis  # along the body axis: picks the rung
    along = relative @ ladder.across  # along each rung
    spacing = float(offsets[1] - offsets[0]) if len(offsets) > 1 else 1.0
    tri = height_of[faces]
    first = np.ceil((tri.min(axis=1) - offsets[0]) / spacing).astype(np.int64)
    last = np.floor((tri.max(axis=1) - offsets[0]) / spacing).astype(np.int64)
    first = np.maximum(first, 0)
    last = np.minimum(last, len(offsets) - 1)
    count = np.maximum(last - first + 1, 0)
    pair_face = np.repeat(np.arange(len(faces)), count)
    pair_rung = np.repeat(first, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    start, end, valid = _crossings(along, height_of, faces, pair_face, offsets[pair_rung])
    limits = ladder.lines().limits(width, height)
    low, high = limits[pair_rung, 0], limits[pair_rung, 1]
    keep = valid & np.isfinite(low)
    start = np.maximum(start[keep], low[keep])
    end = np.minimum(end[keep], high[keep])
    rung = pair_rung[keep]
    keep = end > start
    start, end, rung = start[keep], end[keep], rung[keep]
    widths = np.zeros(len(offsets))
    if start.size == 0:
        return widths
    # One merge for all rungs: shifting rung k by k * gap keeps every rung's intervals apart.
    gap = 4.0 * (float(ladder.window) + 1.0)
    merged = merge(start + rung * gap, end + rung * gap)
    owner = np.floor((merged[:, 0] + gap / 2) / gap).astype(np.int64)
    np.add.at(widths, owner, merged[:, 1] - merged[:, 0])
    return widths


def mask_runs(mask: np.ndarray, lines: Lines, threshold: float = 0.5, step: float = 0.25) -> list[np.ndarray]:
    """Per line, the (k, 2) runs where a soft (H, W) mask exceeds ``threshold``, sampled every ``step`` px."""
    mask = np.asarray(mask, dtype=np.float32)
    height, width = mask.shape
    limits = lines.limits(width, height)
    runs = []
    for index in range(len(lines)):
        low, high = limits[index]
        s = np.arange(np.ceil(low / step), np.floor(high / step) + 1.0) * step if np.isfinite(low) else np.empty(0)
        if s.size < 2:
            runs.append(np.empty((0, 2)))
            continue
        points = lines.origins[index] + s[:, None] * lines.directions[index]
        values = _bilinear(mask, points[:, 0] - 0.5, points[:, 1] - 0.5) - threshold
        inside = values > 0.0
        change = np.flatnonzero(inside[1:] != inside[:-1])
        edges = list(s[change] + step * values[change] / (values[change] - values[change + 1]))
        if inside[0]:
            edges.insert(0, max(s[0], low))
        if inside[-1]:
            edges.append(min(s[-1], high))
        runs.append(np.array(edges, dtype=np.float64).reshape(-1, 2))
    return runs


def mask_widths(mask: np.ndarray, ladder: Ladder, threshold: float = 0.5) -> np.ndarray:
    """(K,) covered length of every rung of ``ladder`` across a soft mask (see :func:`mask_runs`)."""
    window = float(ladder.window)
    return np.array([covered(runs, -window, window) for runs in mask_runs(mask, ladder.lines(), threshold)])


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples at array coordinates (x = column, y = row); border pixels extend to the edge."""
    height, width = image.shape
    x = np.clip(x, 0.0, width - 1.0)
    y = np.clip(y, 0.0, height - 1.0)
    x0 = np.minimum(np.floor(x).astype(int), max(width - 2, 0))
    y0 = np.minimum(np.floor(y).astype(int), max(height - 2, 0))
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


__all__ = ["Ladder", "Lines", "covered", "farthest", "mask_runs", "mask_widths", "merge", "mesh_runs", "mesh_widths"]
