"""The conditions stage: pose bank -> posed body -> camera -> depth / normal / skeleton maps.

Public entry points used by the builder and the CLI:

* :func:`load_condition_renderer` -> a :class:`posedive.schema.ConditionRenderer` for a recipe;
* :func:`sample_requests` / :func:`gallery_requests` for uniform (pose, elevation, azimuth) draws;
* :class:`PoseBank`, the built-in banks and the registry of importers in :mod:`posedive.conditions.posebank`.

Heavy libraries (torch, anny, smplx, pyrender) are imported inside the functions that need them.
"""

from __future__ import annotations

from ..paths import cache_dir
from .gallery import contact_sheet, gallery_requests, render_gallery, sample_requests
from .posebank import PoseBank, load_builtin_bank, load_pose_bank
from .renderer import BodyConditionRenderer, ConditionCache, RendererSpec, load_condition_renderer, renderer_spec

__all__ = [
    "BodyConditionRenderer",
    "ConditionCache",
    "PoseBank",
    "RendererSpec",
    "cache_dir",
    "contact_sheet",
    "gallery_requests",
    "load_builtin_bank",
    "load_condition_renderer",
    "load_pose_bank",
    "render_gallery",
    "renderer_spec",
    "sample_requests",
]
