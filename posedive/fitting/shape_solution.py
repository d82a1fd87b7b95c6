"""One Gauss-Newton solve of an identity's shape, and how two solves over different values join."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ShapeSolution:
    """The joint estimate (every shape value), the posterior variance of the fitted values ``free``,
    and per image: its own estimate and sd of those values, its rms residual (noise units, NaN when
    not compared), its weight in the joint fit and why it was left out (None when used)."""

    estimate: np.ndarray
    variance: np.ndarray  # (len(free),)
    own_values: np.ndarray  # (images, len(free))
    own_sd: np.ndarray
    weights: np.ndarray
    residuals: np.ndarray
    reasons: list[str | None]
    free: np.ndarray

    def _columns(self, indices: np.ndarray) -> np.ndarray:
        return np.array([int(np.flatnonzero(self.free == i)[0]) for i in indices], dtype=np.int64)

    def joined(self, held: ShapeSolution, indices: np.ndarray, free: np.ndarray) -> ShapeSolution:
        """This solve with the values ``indices`` (held fixed here) taken from ``held``, over ``free``
        in that order; the images' use, weights and residuals stay this solve's."""
        estimate = self.estimate.copy()
        estimate[indices] = held.estimate[indices]
        variance = np.empty(len(free))
        own_values = np.empty((len(self.reasons), len(free)))
        own_sd = np.empty_like(own_values)
        for column, index in enumerate(free):
            source = held if index in indices else self
            at = source._columns(np.array([index]))[0]
            variance[column] = source.variance[at]
            own_values[:, column] = source.own_values[:, at]
            own_sd[:, column] = source.own_sd[:, at]
        return ShapeSolution(estimate, variance, own_values, own_sd, self.weights, self.residuals, self.reasons, free)


__all__ = ["ShapeSolution"]
