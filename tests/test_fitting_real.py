"""Fits on the committed real pedestrian crops (64x128, from vtest.avi).

Walking directions were read off the crops by eye (faces visible vs backs of heads): identity 19
walks towards the camera, identities 14 and 16 walk away from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posedive.conditions.fitted import FitRenderer, fit_sheet
from posedive.fitting import FitConfig, Skeleton, azimuth_difference, fit_images
from posedive.video.inputs import read_rgb

FIXTURE = Path(__file__).parent / "fixtures" / "vtest_market"
TOWARDS, AWAY = (19,), (14, 16)
MAX_REPROJECTION_PX = 3.0  # on 64x128 crops


def crops_of(pid: int) -> list[Path]:
    return sorted(p for p in FIXTURE.rglob(f"{pid:04d}_*.jpg"))


def circular_mean(degrees: list[float]) -> float:
    radians = np.radians(degrees)
    return float(np.degrees(np.arctan2(np.sin(radians).mean(), np.cos(radians).mean())) % 360.0)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from posedive.body.models import AnnyBody

    body = AnnyBody()
    paths = [p for pid in TOWARDS + AWAY for p in crops_of(pid)]
    images = [read_rgb(p) for p in paths]
    fits = fit_images(images, skeleton=Skeleton.from_body(body), config=FitConfig(threads=1))
    return body, paths, images, fits


def test_fits_converge_on_real_crops(fitted):
    _, paths, _, fits = fitted
    assert len(paths) >= 18
    good = [f for f in fits if f.success]
    assert len(good) >= 0.8 * len(fits), [f.reason for f in fits if not f.success]
    assert np.mean([f.error_2d_px for f in good]) < MAX_REPROJECTION_PX
    assert all(f.error_2d_px < 2 * MAX_REPROJECTION_PX for f in good)


def test_walking_towards_and_away_differ_by_about_180_degrees(fitted):
    _, paths, _, fits = fitted
    azimuth: dict[int, list[float]] = {}
    for path, fit in zip(paths, fits):
        if fit.success:
            azimuth.setdefault(int(path.name[:4]), []).append(fit.camera.azimuth_deg)
    towards = circular_mean([a for pid in TOWARDS for a in azimuth[pid]])
    away = circular_mean([a for pid in AWAY for a in azimuth[pid]])
    assert azimuth_difference(towards, 0.0) < 45.0
    assert azimuth_difference(away, 180.0) < 45.0
    assert azimuth_difference(towards, away) > 135.0


def test_overlay_sheet_is_written(fitted, tmp_path):
    body, paths, images, fits = fitted
    with FitRenderer(body) as renderer:
        maps = renderer.render(fits[:4])
    for image, m in zip(images, maps):
        assert m.normal.shape == image.shape and m.mask.any()
        # The rendered body covers the person: the middle of the crop, top to bottom.
        rows, cols = np.nonzero(m.mask)
        assert rows.max() - rows.min() > 0.6 * image.shape[0]
        assert abs(cols.mean() - image.shape[1] / 2) < 0.2 * image.shape[1]
    sheet = fit_sheet([(p.name, i, m, f) for p, i, m, f in zip(paths, images, maps, fits)], tmp_path / "sheet.png")
    assert sheet.stat().st_size > 0
