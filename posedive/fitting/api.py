"""Images in, fits out: pose estimation and fitting in one call, for loose arrays or an ``ImageGroup``.

Fitting takes its images as ``posedive.schema.ImageGroup`` (what image and video readers produce)
or as plain arrays, and never reads files or videos itself.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..schema import ImageGroup
from .fitter import FitConfig, fit_observations
from .landmarks import observe
from .result import FitResult
from .skeleton import Skeleton


def fit_images(
    images: Sequence[np.ndarray],
    body=None,
    config: FitConfig | None = None,
    *,
    sequence: bool = False,
    estimator=None,
    skeleton: Skeleton | None = None,
    device: str = "cpu",
) -> list[FitResult]:
    """Fit the body model to one person per RGB uint8 image (``sequence``: consecutive video frames).

    ``body`` is a ``posedive.body.models.BodyModel`` (anny when omitted); pass ``skeleton`` to
    reuse one read before.
    """
    if skeleton is None:
        if body is None:
            from ..body.models import load_body_model

            body = load_body_model("anny")
        skeleton = Skeleton.from_body(body)
    return fit_observations(observe(images, estimator), skeleton, config, sequence=sequence, device=device)


def fit_group(
    group: ImageGroup,
    skeleton: Skeleton,
    config: FitConfig | None = None,
    *,
    estimator=None,
    device: str = "cpu",
) -> list[FitResult]:
    """One fit per image of ``group``, in order; a sequence's images are fitted as consecutive frames.
    ``estimator``: a ``BlazePoseEstimator`` to reuse (one is made and closed when omitted)."""
    return fit_images(group.images, config=config, sequence=group.sequence, estimator=estimator, skeleton=skeleton,
                      device=device)
