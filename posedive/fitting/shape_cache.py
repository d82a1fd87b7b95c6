"""Identity shape estimates cached by content, so a rebuild or a second recipe over the same source
reads an identity's body shape instead of fitting it again.

The key is the sha256 of the settings that decide the answer (shape and fit configuration, the pose
estimator's settings, the body model's identity, the fallback seed) and of the sorted sha256s of the
reference images' bytes: moving or renaming a dataset, or listing an identity's images in another
order, keeps the entry; changing an image or a setting misses it. An entry is the ``IdentityShape``
as JSON under ``<posedive cache>/shapes/<key[:2]>/<key>.json``, written atomically, so parallel
workers may share the folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterable, Mapping

from pydantic import ValidationError

from ..files import atomic_write_text
from ..paths import SHAPE_CACHE, cache_dir, cache_entry
from .shape_result import IdentityShape

logger = logging.getLogger(__name__)


def default_shape_cache_dir() -> Path:
    """``shapes/`` under posedive's cache root (``posedive.paths.cache_dir``)."""
    return cache_dir() / SHAPE_CACHE


def identity_key(image_digests: Iterable[str], settings: Mapping[str, object]) -> str:
    """The cache key of one identity: its images' sha256s (any order) and the settings."""
    digest = hashlib.sha256(json.dumps(dict(settings), sort_keys=True, default=str).encode())
    for image in sorted(image_digests):
        digest.update(b"\0")
        digest.update(image.encode())
    return digest.hexdigest()


class ShapeCache:
    """``key -> IdentityShape`` as JSON files under ``folder``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_shape_cache_dir()

    def path(self, key: str) -> Path:
        return cache_entry(self.folder, key, ".json")

    def get(self, key: str) -> IdentityShape | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return IdentityShape.model_validate_json(path.read_text())
        except (OSError, ValueError, ValidationError) as error:
            logger.warning("ignoring unreadable cached body shape %s (%s); fitting it again", path, error)
            return None

    def put(self, key: str, shape: IdentityShape) -> Path:
        path = self.path(key)
        atomic_write_text(path, shape.model_dump_json())
        return path


__all__ = ["ShapeCache", "default_shape_cache_dir", "identity_key"]
