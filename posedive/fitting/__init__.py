"""Body fitting: BlazePose landmarks -> SMPL-24 pose, body orientation and camera (``posedive fit``).

Entry points: :func:`fit_group` (a ``posedive.schema.ImageGroup`` in, one :class:`FitResult` per image),
:func:`fit_images` (the same for plain arrays), :func:`fit_observations` (the optimiser, batched). Images
come from the caller (``posedive.video.inputs`` reads images, folders and videos into groups); the
conditions stage renders a fit's condition maps (``posedive.conditions.fitted``).
"""

from __future__ import annotations

from .api import fit_group, fit_images
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
    "fit_group",
    "fit_images",
    "fit_observations",
    "observe",
    "viewpoint",
]
