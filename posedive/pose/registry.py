"""The registry of pose estimators: a recipe names one (``filter.estimator``), this module builds it."""

from __future__ import annotations

from typing import Any, Callable

from .protocol import PoseEstimator


def _blazepose(**options: Any) -> PoseEstimator:
    from .blazepose import BlazePoseEstimator

    return BlazePoseEstimator(**options)


ESTIMATORS: dict[str, Callable[..., PoseEstimator]] = {"blazepose": _blazepose}


def load_pose_estimator(name: str = "blazepose", **options: Any) -> PoseEstimator:
    """Build the named estimator (once per process; it holds loaded models). ``options`` go to its
    constructor, e.g. ``pad_fractions`` for BlazePose."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown pose estimator {name!r}; available: {sorted(ESTIMATORS)}")
    return ESTIMATORS[name](**options)
