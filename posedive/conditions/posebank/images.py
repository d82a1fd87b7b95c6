"""Importer of a user's own photographs or videos: fitted poses become bank entries.

Each person in the images (or each clean track of a fixed-camera video) is fitted with the body
fitter; successful fits are kept with their provenance (source folder or video, group, frame index),
so a user can augment with the poses of their own domain. Fitted poses live in the body's own upright
frame (the viewpoint is in the fit's camera, not in the pose), which is the canonical form a bank
holds: the build's sampled camera then supplies the viewpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...fitting.fitter import FitConfig, fit_observations
from ...fitting.landmarks import observe
from ...fitting.skeleton import Skeleton
from ...video.inputs import iter_inputs
from .format import PoseBank, slug

logger = logging.getLogger(__name__)


def bank_from_images(
    source: Path,
    *,
    licence: str,
    body=None,
    config: FitConfig | None = None,
    progress: bool = True,
) -> PoseBank:
    """Fit every person in ``source`` (an image, a folder of images or a video) into a pose bank."""
    from ...pose.blazepose import BlazePoseEstimator

    if body is None:
        from ...body.models import load_body_model

        body = load_body_model("anny")
    skeleton = Skeleton.from_body(body)
    origin = slug(Path(source).stem, "images")
    poses, ids, clips, frames = [], [], [], []
    fitted = total = 0
    with BlazePoseEstimator() as estimator:
        for group in iter_inputs(Path(source), progress=progress):
            fits = fit_observations(observe(group.images, estimator), skeleton, config, sequence=group.sequence)
            clip = slug(group.name, "images")
            for index, fit in enumerate(fits):
                total += 1
                if not fit.success:
                    continue
                fitted += 1
                poses.append(fit.pose)
                ids.append(f"{origin}-{clip}-{index:05d}")
                clips.append(clip)
                frames.append(index)
    logger.info("%d of %d images fitted into the pose bank", fitted, total)
    if not poses:
        raise InputError(f"{source}: no person could be fitted, so there are no poses to bank",
                         hint="give images or a video in which one whole person is visible")
    n = len(ids)
    return PoseBank.from_arrays(np.asarray(poses), ids, [origin] * n, clips, frames, [licence] * n)
