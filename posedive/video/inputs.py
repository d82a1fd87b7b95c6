"""People to fit or to bank, read from an image, a folder of images or a fixed-camera video, as
``posedive.schema.ImageGroup``s: the neutral type that body fitting (``posedive fit``) and the
pose-bank importer (``posedive posebank build --from-images``) consume, so fitting never imports
this package and this package never imports fitting.

An image or a folder is read as it is (one group of loose images, no video code involved); a video
yields one sequence per clean track, cropped around the person.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError, PathNotFound
from ..schema import ImageGroup

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: cannot read this image", hint="give a readable image file, a folder or a video")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_group(path: Path) -> ImageGroup:
    """An image file, or every image under a folder (sorted), as one group of loose images."""
    path = Path(path)
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise InputError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return ImageGroup(path.name, [str(p.relative_to(path)) for p in images], [read_rgb(p) for p in images], False)
    return ImageGroup(path.stem, [path.name], [read_rgb(path)], False)


def track_groups(video: Path, crop_size: tuple[int, int] = (96, 192), progress: bool = True) -> Iterator[ImageGroup]:
    """One sequence per clean track of a fixed-camera video, cropped to ``crop_size`` around the person."""
    import cv2

    from .crops import CropConfig, CropRef, aspect_box, extract_crops
    from .extract import extract_tracks

    video = Path(video)
    tracks = extract_tracks(video, progress=progress)
    crop = CropConfig()
    refs = {
        track_id: [CropRef(track_id, d, aspect_box(d.box, crop.aspect, crop.margin)) for d in clean]
        for track_id, clean in sorted(tracks.kept.items())
    }
    crops = extract_crops(video, [r for rs in refs.values() for r in rs], crop_size)
    for track_id, track_refs in refs.items():
        yield ImageGroup(
            f"track{track_id:04d}",
            [f"{video.name}#track{track_id}@frame{r.detection.frame}" for r in track_refs],
            [cv2.cvtColor(crops[r], cv2.COLOR_BGR2RGB) for r in track_refs],
            True,
        )


def iter_inputs(path: Path, crop_size: tuple[int, int] = (96, 192), progress: bool = True) -> Iterator[ImageGroup]:
    """Groups of images from ``path``: an image or a folder gives one group, a video one sequence per
    clean track."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        yield read_image_group(path)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        yield from track_groups(path, crop_size, progress)
    elif not path.exists():
        raise PathNotFound(f"{path}: no such file or folder")
    else:
        raise InputError(f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}), a video ({', '.join(VIDEO_SUFFIXES)}) "
                         f"or a folder")
