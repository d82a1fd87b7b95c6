"""Body fitting: BlazePose landmarks -> SMPL-24 pose, body orientation and camera (``posedive fit``),
and an identity's body shape from its reference images.

Entry points: :func:`fit_group` (a ``posedive.schema.ImageGroup`` in, one :class:`FitResult` per image),
:func:`fit_images` (the same for plain arrays), :func:`fit_observations` (the optimiser, batched). Images
come from the caller (``posedive.video.inputs`` reads images, folders and videos into groups); the
conditions stage renders a fit's condition maps (``posedive.conditions.fitted``).
:func:`estimate_identity_shape` (images in, one :class:`IdentityShape`), :class:`ShapeEstimator` (the
shape fit) and :class:`ShapeCache` (estimates cached by content).
"""

from __future__ import annotations

from .api import fit_group, fit_images
from .fitter import FitConfig, fit_observations
from .landmarks import Observation, observe
from .result import FitResult, azimuth_difference, viewpoint
from .shape import ShapeEstimator, ShapeObservation, estimate_identity_shape, observe_shapes
from .shape_cache import ShapeCache, identity_key
from .shape_result import IdentityShape, ImageShape, ShapeEstimate, ShapeFitConfig
from .skeleton import Skeleton

__all__ = [
    "FitConfig",
    "FitResult",
    "IdentityShape",
    "ImageShape",
    "Observation",
    "ShapeCache",
    "ShapeEstimate",
    "ShapeEstimator",
    "ShapeFitConfig",
    "ShapeObservation",
    "Skeleton",
    "azimuth_difference",
    "estimate_identity_shape",
    "fit_group",
    "fit_images",
    "fit_observations",
    "identity_key",
    "observe",
    "observe_shapes",
    "viewpoint",
]
