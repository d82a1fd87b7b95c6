"""A content-addressed cache of per-image pose analyses, so ``posedive stats`` reruns are instant.

The key is the sha256 of the estimator's settings and the image file's bytes: renaming or moving a
dataset keeps its cache, changing an image or an estimator setting misses it. One SQLite file holds
the entries; only the parent process writes to it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict

from ..paths import POSE_CACHE, POSE_CACHE_DB, cache_dir


class PoseRecord(BaseModel):
    """What ``posedive stats`` keeps of one image: its COCO-17 keypoints and body azimuth."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person_found: bool
    width: int
    height: int
    keypoints: list[list[float]] | None = None  # (17, 3): x, y in pixels, confidence
    azimuth_deg: float | None = None  # see posedive.analysis.orientation for the convention
    orientation_source: Literal["fit", "landmarks"] | None = None  # what gave azimuth_deg


def default_cache_dir() -> Path:
    """``poses/`` under posedive's cache root (``posedive.paths.cache_dir``)."""
    return cache_dir() / POSE_CACHE


def content_key(data: bytes, settings: Mapping[str, object]) -> str:
    digest = hashlib.sha256(json.dumps(dict(settings), sort_keys=True).encode())
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()


class PoseCache:
    """``key -> PoseRecord`` in ``<folder>/poses.sqlite``."""

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / POSE_CACHE_DB
        self._db = sqlite3.connect(self.path)
        self._db.execute("CREATE TABLE IF NOT EXISTS poses (key TEXT PRIMARY KEY, record TEXT NOT NULL)")
        self._db.commit()

    def get_many(self, keys: Iterable[str]) -> dict[str, PoseRecord]:
        found: dict[str, PoseRecord] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, text in self._db.execute(f"SELECT key, record FROM poses WHERE key IN ({marks})", chunk):
                found[key] = PoseRecord.model_validate_json(text)
        return found

    def put_many(self, records: Mapping[str, PoseRecord]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO poses (key, record) VALUES (?, ?)",
            [(key, record.model_dump_json()) for key, record in records.items()],
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "PoseCache":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
