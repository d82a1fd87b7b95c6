"""What ``posedive fit`` accepts: an image, a folder of images, or a fixed-camera video (its tracks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")


@dataclass(frozen=True)
class FitInput:
    """One group of images fitted together: a track of a video (a sequence) or loose images."""

    name: str
    sources: list[str]
    images: list[np.ndarray]  # RGB uint8
    sequence: bool


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot read this image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def iter_inputs(path: Path, crop_size: tuple[int, int] = (96, 192), progress: bool = True) -> Iterator[FitInput]:
    """Groups of images to fit from ``path``; a video yields one sequence per clean track."""
    path = Path(path)
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise ValueError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        yield FitInput(path.name, [str(p.relative_to(path)) for p in images], [read_rgb(p) for p in images], False)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        yield FitInput(path.stem, [path.name], [read_rgb(path)], False)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        import cv2

        from .crops import CropConfig, CropRef, aspect_box, extract_crops
        from .extract import extract_tracks

        tracks = extract_tracks(path, progress=progress)
        crop = CropConfig()
        refs = {
            track_id: [CropRef(track_id, d, aspect_box(d.box, crop.aspect, crop.margin)) for d in clean]
            for track_id, clean in sorted(tracks.kept.items())
        }
        crops = extract_crops(path, [r for rs in refs.values() for r in rs], crop_size)
        for track_id, track_refs in refs.items():
            yield FitInput(
                f"track{track_id:04d}",
                [f"{path.name}#track{track_id}@frame{r.detection.frame}" for r in track_refs],
                [cv2.cvtColor(crops[r], cv2.COLOR_BGR2RGB) for r in track_refs],
                True,
            )
    elif not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    else:
        raise ValueError(f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}), a video ({', '.join(VIDEO_SUFFIXES)}) or a folder")
