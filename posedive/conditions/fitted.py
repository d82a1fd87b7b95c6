"""Condition maps of a fitted body, aligned with the image it was fitted to, and overlays to look at.

The maps are drawn by the conditions stage's own pieces (body model forward pass, ``MeshRasterizer``,
``encode_depth``, ``draw_skeleton``, and ``forms.render_forms`` for the maps in other families' forms),
from the fitted camera instead of a sampled one, so a training pair's target maps are exactly what
generation-time conditions look like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..fitting.result import FitResult


@dataclass(frozen=True)
class FitMaps:
    depth: np.ndarray  # (H, W) uint8, near = bright, background 0
    normal: np.ndarray  # (H, W, 3) uint8
    skeleton: np.ndarray  # (H, W, 3) uint8, OpenPose-18 drawing
    keypoints_2d: np.ndarray  # (18, 3) x, y, in-image flag
    mask: np.ndarray  # (H, W) bool
    # The maps rendered on request (``forms.FORM_RENDERERS``: Champ's depth, the semantic map), (H, W, 3) uint8.
    forms: dict[str, np.ndarray] = field(default_factory=dict)


class FitRenderer:
    """Renders fits of one body model; keeps one rasterizer per image size (each costs ~200 ms)."""

    def __init__(self, body) -> None:
        self.body = body
        self._rasterizers: dict[tuple[int, int], object] = {}
        self._face_parts: np.ndarray | None = None

    def _rasterizer(self, width: int, height: int):
        from .render import MeshRasterizer

        key = (width, height)
        if key not in self._rasterizers:
            self._rasterizers[key] = MeshRasterizer(width, height)
        return self._rasterizers[key]

    def face_parts(self, faces: np.ndarray) -> np.ndarray:
        """(F,) SMPL part of each face: the same for every pose, so worked out once."""
        if self._face_parts is None or len(self._face_parts) != len(faces):
            from ..body.parts import face_parts

            self._face_parts = face_parts(faces, self.body.vertex_parts())
        return self._face_parts

    def render(self, fits: Sequence[FitResult], forms: Sequence[str] = ()) -> list[FitMaps]:
        """The maps of each fit; ``forms``: the maps rendered on request to draw too (``forms.FORM_RENDERERS``)."""
        from ..geometry.cameras import project
        from .forms import check_forms, render_forms
        from .render import draw_skeleton, encode_depth

        check_forms(forms)
        if not fits:
            return []
        bodies = self.body.forward(np.array([fit.pose for fit in fits]))
        out = []
        for index, fit in enumerate(fits):
            camera = fit.camera
            rasterizer = self._rasterizer(camera.width, camera.height)
            maps = rasterizer.render(bodies.vertices[index], bodies.faces, camera)
            projected = project(bodies.keypoints[index], camera)
            inside = (
                (projected[:, 0] >= 0)
                & (projected[:, 0] < camera.width)
                & (projected[:, 1] >= 0)
                & (projected[:, 1] < camera.height)
                & (projected[:, 2] > 0)
            )
            keypoints = np.concatenate([projected[:, :2], inside[:, None]], axis=1).astype(np.float32)
            out.append(
                FitMaps(
                    depth=encode_depth(maps.depth_m),
                    normal=maps.normal,
                    skeleton=draw_skeleton(keypoints, camera.width, camera.height),
                    keypoints_2d=keypoints,
                    mask=maps.mask,
                    forms=render_forms(forms, rasterizer, bodies.vertices[index], bodies.faces, camera, maps,
                                       self.face_parts),
                )
            )
        return out

    def close(self) -> None:
        for rasterizer in self._rasterizers.values():
            rasterizer.close()
        self._rasterizers.clear()

    def __enter__(self) -> "FitRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def overlay(image_rgb: np.ndarray, maps: FitMaps, alpha: float = 0.55) -> np.ndarray:
    """The image with the fitted body's normal map blended over it and its skeleton on top."""
    out = image_rgb.astype(np.float32)
    mask = maps.mask[..., None]
    out = np.where(mask, (1 - alpha) * out + alpha * maps.normal.astype(np.float32), out)
    drawn = maps.skeleton.any(axis=-1, keepdims=True)
    out = np.where(drawn, maps.skeleton.astype(np.float32), out)
    return np.clip(out, 0, 255).astype(np.uint8)


def fit_sheet(
    items: Sequence[tuple[str, np.ndarray, FitMaps, FitResult]], out: Path, per_row: int = 6, scale: int = 2
) -> Path:
    """Contact sheet: for each image, the image, the overlay, and a caption (azimuth, errors)."""
    import cv2

    from ..video.sheet import contact_sheet

    rows: dict[str, list[tuple[str, np.ndarray]]] = {}
    for start in range(0, len(items), per_row):
        row = []
        for name, image, maps, fit in items[start : start + per_row]:
            tile = np.concatenate([image, overlay(image, maps)], axis=1)
            tile = cv2.resize(tile, (tile.shape[1] * scale, tile.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
            flag = "" if fit.success else " REJ"
            row.append((f"az{fit.camera.azimuth_deg:.0f} {fit.error_2d_px:.1f}px{flag}", cv2.cvtColor(tile, cv2.COLOR_RGB2BGR)))
        rows[items[start][0][:12]] = row
    return contact_sheet(rows, out)
