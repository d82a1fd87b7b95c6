"""Body fitting: BlazePose landmarks -> SMPL-24 pose, body orientation and camera (``posedive fit``).

Entry points: :func:`fit_images` (images in, one :class:`FitResult` each), :func:`fit_observations`
(the optimiser, batched), :class:`posedive.conditions.fitted.FitRenderer` renders a fit's condition maps.
"""

from __future__ import annotations

from .api import fit_images
from .fitter import FitConfig, fit_observations
from .landmarks import Observation, observe
from .result import FitResult, azimuth_difference, viewpoint
from .skeleton import Skeleton

__all__ = [
    "FitConfig",
    "FitResult",
    "Observation",
    "Skeleton",
    "azimuth_difference",
    "fit_images",
    "fit_observations",
    "observe",
    "viewpoint",
]
