"""Run BlazePose over many image files on all CPU cores, with a progress bar and the content cache.

Each worker process builds one estimator (MediaPipe graphs are neither picklable nor thread-safe)
and analyses chunks of encoded images; the parent hashes the bytes, answers what it can from the
cache, and stores new answers. Workers are started with ``spawn`` so that nothing the parent holds
(torch threads, OpenGL contexts) is forked into them.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from .cache import PoseCache, PoseRecord, content_key

logger = logging.getLogger(__name__)

# State of a pool worker process: its estimator, built once by ``_init_worker``.
_WORKER_STATE: dict[str, Any] = {}


@dataclass(frozen=True)
class ImageItem:
    """One encoded image to analyse; ``key`` names it in reports, ``camera`` groups it.
    ``requested_azimuth_deg`` is the virtual camera's azimuth of a generated image, when known."""

    key: str
    camera: str
    data: bytes
    requested_azimuth_deg: float | None = None


def decode_image(data: bytes, what: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"{what}: not a readable image ({error})") from None


def analyse_array(estimator: Any, image: np.ndarray) -> PoseRecord:
    """One image through a ``BlazePoseEstimator`` -> keypoints and body azimuth."""
    from .orientation import estimate_body_azimuth

    result = estimator.analyse([image])[0]
    height, width = image.shape[:2]
    if not result.person_found:
        return PoseRecord(person_found=False, width=width, height=height)
    azimuth = None
    if result.world_landmarks is not None:
        try:
            azimuth = estimate_body_azimuth(result.world_landmarks)
        except ValueError:
            azimuth = None
    return PoseRecord(person_found=True, width=width, height=height,
                      keypoints=np.round(result.estimate.keypoints, 3).tolist(), azimuth_deg=azimuth)


def _init_worker(options: dict[str, Any]) -> None:
    from .blazepose import BlazePoseEstimator

    _WORKER_STATE["estimator"] = BlazePoseEstimator(**options)


def _analyse_with(estimator: Any, chunk: Sequence[tuple[str, bytes]]) -> list[PoseRecord]:
    return [analyse_array(estimator, decode_image(data, name)) for name, data in chunk]


def _analyse_in_worker(chunk: Sequence[tuple[str, bytes]]) -> list[PoseRecord]:
    return _analyse_with(_WORKER_STATE["estimator"], chunk)


def estimator_settings(options: dict[str, Any]) -> dict[str, object]:
    """The settings that key the cache: the estimator's own, with ``options`` applied."""
    from .blazepose import BlazePoseEstimator

    return BlazePoseEstimator.settings_for(**options)


def _run(
    chunks: Sequence[list[tuple[str, str, bytes]]], workers: int, options: dict[str, Any]
) -> Iterator[tuple[list[tuple[str, str, bytes]], list[PoseRecord]]]:
    """Yield each chunk of ``(cache key, name, data)`` with its records, in order."""
    if workers == 1 or len(chunks) <= 1:
        from .blazepose import BlazePoseEstimator

        with BlazePoseEstimator(**options) as estimator:
            for chunk in chunks:
                yield chunk, _analyse_with(estimator, [(name, data) for _, name, data in chunk])
        return
    import multiprocessing
    from collections import deque

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(options,)) as pool:
        # A bounded window of chunks in flight keeps memory flat on large datasets.
        in_flight: deque = deque()
        for chunk in chunks:
            in_flight.append((chunk, pool.submit(_analyse_in_worker, [(name, data) for _, name, data in chunk])))
            if len(in_flight) >= 4 * workers:
                done, future = in_flight.popleft()
                yield done, future.result()
        while in_flight:
            done, future = in_flight.popleft()
            yield done, future.result()


def analyse_items(
    items: Sequence[ImageItem],
    *,
    workers: int = 1,
    cache: PoseCache | None = None,
    estimator_options: dict[str, Any] | None = None,
    chunk_size: int = 16,
    description: str = "estimating poses",
) -> list[PoseRecord]:
    """One ``PoseRecord`` per item, in order, from the cache or from ``workers`` estimator processes
    (1 runs in this process). Identical images are analysed once."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    options = dict(estimator_options or {})
    settings = estimator_settings(options)
    keys = [content_key(item.data, settings) for item in items]
    answers = cache.get_many(keys) if cache is not None else {}
    pending: dict[str, ImageItem] = {}
    for key, item in zip(keys, items):
        if key not in answers and key not in pending:
            pending[key] = item
    if answers:
        logger.info("%d of %d images answered from the cache", len(items) - len(pending), len(items))
    work = [(key, item.key, item.data) for key, item in pending.items()]
    chunks = [work[start : start + chunk_size] for start in range(0, len(work), chunk_size)]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(description, total=len(work))
        for chunk, records in _run(chunks, workers, options):
            batch = {key: record for (key, _, _), record in zip(chunk, records)}
            answers.update(batch)
            if cache is not None:
                cache.put_many(batch)
            progress.advance(task, len(chunk))
    return [answers[key] for key in keys]
