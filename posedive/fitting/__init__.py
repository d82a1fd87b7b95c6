"""Body fitting: BlazePose landmarks -> SMPL-24 pose, body orientation and camera (``posedive fit``).

Entry points: :func:`fit_images` (images in, one :class:`FitResult` each), :func:`fit_observations`
(the optimiser, batched), :class:`FitRenderer` (condition maps of a fit, aligned with its image).
"""

from __future__ import annotations

from .api import fit_images
from .fitter import FitConfig, fit_observations
from .landmarks import Observation, observe
from .render import FitMaps, FitRenderer, fit_sheet, overlay
from .result import FitResult, azimuth_difference, viewpoint
from .skeleton import Skeleton

__all__ = [
    "FitConfig",
    "FitMaps",
    "FitRenderer",
    "FitResult",
    "Observation",
    "Skeleton",
    "azimuth_difference",
    "fit_images",
    "fit_observations",
    "fit_sheet",
    "observe",
    "overlay",
    "viewpoint",
]
