"""Pose estimators by name: a recipe names one (``filter.estimator``), this module builds it.

Each entry imports its backend only when it builds an estimator, so checking a name
(``check_estimator_name``, which recipe validation calls) costs nothing and imports no model package:
a recipe validates where MediaPipe is not installed. An unknown name is an ``UnknownEstimator``
error whose message lists the names there are.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Mapping

from ..errors import InputError
from .protocol import PoseEstimator


class UnknownEstimator(InputError):
    """A pose estimator name that is not in the registry; the message lists the valid ones."""


def _blazepose(**options: Any) -> PoseEstimator:
    from .blazepose import BlazePoseEstimator

    return BlazePoseEstimator(**options)


ESTIMATORS: Mapping[str, Callable[..., PoseEstimator]] = MappingProxyType({"blazepose": _blazepose})


def check_estimator_name(name: str) -> str:
    """``name`` when the registry holds it, else ``UnknownEstimator`` naming the valid ones."""
    if name not in ESTIMATORS:
        raise UnknownEstimator(f"unknown pose estimator {name!r}; available: {sorted(ESTIMATORS)}",
                               hint=f"name one of: {', '.join(sorted(ESTIMATORS))}")
    return name


def load_pose_estimator(name: str = "blazepose", **options: Any) -> PoseEstimator:
    """Build the named estimator (once per process; it holds loaded models). ``options`` go to its
    constructor, e.g. ``pad_fractions`` for BlazePose."""
    return ESTIMATORS[check_estimator_name(name)](**options)
