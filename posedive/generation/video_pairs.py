"""Training pairs from tracks: (reference crop, target crop of the same person later) + target maps.

The generator learns to redraw the reference person in the target's pose and viewpoint (paper section
3.4, trained with the conditions of the target image). On a video one track is one person, so any two
clean crops of a track make a pair. Each target crop is fitted (``posedive.fitting``; a track is fitted
as a sequence, with temporal smoothness) and its depth / normal / skeleton maps are rendered from the
fitted camera, so they lie on the person in the target image. Targets whose fit is rejected are
skipped. The reference is the crop of the same track, at least ``min_gap`` frames away, whose fitted
body orientation differs most from the target's, so pairs teach a change of pose and viewpoint
rather than copying. Pairs are written with ``posedive.generation.data.PairWriter``, holding the
maps the condition contract of ``PairConfig.family`` reads (``family_pairs.target_maps``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..schema import GENERATOR_FAMILIES
from ..video.crops import CropConfig, CropRef, aspect_box, extract_crops
from ..video.extract import VideoTracks

logger = logging.getLogger(__name__)


class PairConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    size: tuple[int, int] = Field((96, 192), description="crop size (width, height) of references, targets and maps")
    target_stride: int = Field(2, ge=1, description="use every n-th clean detection of a track as a target")
    max_pairs_per_track: int = Field(60, ge=1)
    min_gap: int = Field(15, ge=1, description="fewest frames between reference and target")
    pairs_per_shard: int = Field(500, ge=1)
    family: str = Field("posedive", description="the generator family whose condition contract the maps follow")

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in GENERATOR_FAMILIES:
            raise ValueError(f"generator family {v!r} is not one of {', '.join(GENERATOR_FAMILIES)}")
        return v


@dataclass(frozen=True)
class PairSummary:
    tracks: int
    targets_fitted: int
    targets_rejected: int
    pairs: int
    shards: list[Path]
    mean_error_2d_px: float
    rejections: dict[str, int]


def safe_key(text: str) -> str:
    """WebDataset keys: letters, digits, ``_`` and ``-`` only (no dots)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "video"


def choose_reference(target: int, azimuths: dict[int, float], min_gap: int) -> int | None:
    """The frame, at least ``min_gap`` from ``target``, whose azimuth differs most (ties: farthest)."""
    from ..fitting.result import azimuth_difference

    candidates = [f for f in azimuths if abs(f - target) >= min_gap]
    if not candidates:
        return None
    return max(candidates, key=lambda f: (round(azimuth_difference(azimuths[f], azimuths[target]) / 10.0), abs(f - target), -f))


def write_video_pairs(
    tracks: VideoTracks,
    out: Path,
    body,
    crop: CropConfig | None = None,
    config: PairConfig | None = None,
    fit_config=None,
    progress: bool = True,
) -> PairSummary:
    """Fit every clean crop of every kept track, then write pairs to ``out`` (``pairs-*.tar``)."""
    import cv2

    from .. import __version__
    from ..conditions.fitted import FitRenderer
    from ..fitting import Skeleton, fit_observations, observe
    from ..pose.blazepose import BlazePoseEstimator
    from .contract import forms_to_render
    from .data import PairWriter, TrainingPair
    from .families.registry import family_contract
    from .family_pairs import target_maps

    crop = crop or CropConfig()
    config = config or PairConfig()
    contract = family_contract(config.family)
    skeleton = Skeleton.from_body(body)
    refs = {
        track_id: [CropRef(track_id, d, aspect_box(d.box, crop.aspect, crop.margin)) for d in clean]
        for track_id, clean in sorted(tracks.kept.items())
    }
    crops = extract_crops(tracks.video, [r for rs in refs.values() for r in rs], config.size)
    video_key = safe_key(Path(tracks.video).stem)
    fitted = rejected = 0
    errors: list[float] = []
    rejections: dict[str, int] = {}
    columns = (TextColumn("[bold]pairs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with (
        BlazePoseEstimator() as estimator,
        FitRenderer(body) as renderer,
        PairWriter(out, config.pairs_per_shard) as writer,
        Progress(*columns, disable=not progress) as bar,
    ):
        task = bar.add_task("tracks", total=len(refs))
        for track_id, track_refs in refs.items():
            images = {r.detection.frame: cv2.cvtColor(crops[r], cv2.COLOR_BGR2RGB) for r in track_refs}
            frames = sorted(images)
            fits = fit_observations(observe([images[f] for f in frames], estimator), skeleton, fit_config, sequence=True)
            good = {f: fit for f, fit in zip(frames, fits) if fit.success}
            for fit in fits:
                if not fit.success:
                    reason = (fit.reason or "rejected").split(" ")[0:3]
                    rejections[" ".join(reason)] = rejections.get(" ".join(reason), 0) + 1
            fitted += len(good)
            rejected += len(fits) - len(good)
            azimuths = {f: fit.camera.azimuth_deg for f, fit in good.items()}
            targets = sorted(good)[:: config.target_stride][: config.max_pairs_per_track]
            chosen = [(t, choose_reference(t, azimuths, config.min_gap)) for t in targets]
            chosen = [(t, r) for t, r in chosen if r is not None]
            maps = renderer.render([good[t] for t, _ in chosen], forms=forms_to_render(contract))
            for (target, reference), fit_maps in zip(chosen, maps):
                fit = good[target]
                errors.append(fit.error_2d_px)
                key = f"{video_key}-t{track_id:04d}-f{target:06d}-r{reference:06d}"
                writer.write(
                    TrainingPair(
                        key=key,
                        reference=images[reference],
                        target=images[target],
                        **target_maps(contract, fit_maps, f"pair {key}"),
                        pid=f"{video_key}-t{track_id:04d}",
                        frames=[reference, target],
                        provenance={
                            "source": Path(tracks.video).name,
                            "track": track_id,
                            "fit": fit.model_dump(mode="json"),
                            "reference_azimuth_deg": good[reference].camera.azimuth_deg,
                            "posedive_version": __version__,
                        },
                    )
                )
            bar.advance(task)
        shards = list(writer.shards)
        count = writer.count
    return PairSummary(
        tracks=len(refs),
        targets_fitted=fitted,
        targets_rejected=rejected,
        pairs=count,
        shards=shards,
        mean_error_2d_px=float(np.mean(errors)) if errors else float("nan"),
        rejections=rejections,
    )
