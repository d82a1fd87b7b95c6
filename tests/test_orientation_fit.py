"""Body orientation from the body fitter in ``posedive stats`` and viewpoint splits, on real crops."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from posedive.analysis.images import ImageItem, OrientationFitter, _analyse_with, analyse_items, analysis_settings
from posedive.analysis.orientation import angular_difference
from posedive.pose.cache import PoseCache

FIXTURE = Path(__file__).parent / "fixtures" / "vtest_market"

pytestmark = pytest.mark.skipif(not (FIXTURE / "READY").is_file(), reason="real crops fixture not written yet")


def _jpeg(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def crops() -> list[ImageItem]:
    paths = sorted((FIXTURE / "bounding_box_train").glob("*.jpg"))[:24]
    blank = ImageItem(key="blank", camera="c1", data=_jpeg(np.full((128, 64, 3), 200, np.uint8)))
    return [ImageItem(key=p.name, camera="c1", data=p.read_bytes()) for p in paths] + [blank]


@pytest.fixture(scope="module")
def both(crops, tmp_path_factory):
    cache = PoseCache(tmp_path_factory.mktemp("cache"))
    try:
        landmarks = analyse_items(crops, cache=cache, orientation="landmarks")
        fitted = analyse_items(crops, cache=cache, orientation="fit")  # same cache: must not answer
    finally:
        cache.close()
    return landmarks, fitted


def test_fitted_orientation_agrees_with_the_landmark_geometry(both):
    landmarks, fitted = both
    people = [i for i, r in enumerate(fitted) if r.person_found]
    assert len(people) >= 20
    assert all(fitted[i].azimuth_deg is not None for i in people)
    assert sum(fitted[i].orientation_source == "fit" for i in people) >= 0.8 * len(people)
    assert all(landmarks[i].orientation_source == "landmarks" for i in people)
    # Same convention (0 front, 90 left side visible): fitted and landmark azimuths stay close.
    close = [angular_difference(fitted[i].azimuth_deg, landmarks[i].azimuth_deg) < 45.0 for i in people
             if fitted[i].orientation_source == "fit" and landmarks[i].azimuth_deg is not None]
    assert np.mean(close) >= 0.8
    blank = fitted[-1]
    assert not blank.person_found and blank.azimuth_deg is None and blank.orientation_source is None


def test_cache_keys_name_the_orientation_method():
    assert analysis_settings({}, "fit") != analysis_settings({}, "landmarks")
    assert analysis_settings({}, "fit")["orientation"] == "fit"
    with pytest.raises(ValueError, match="fit or landmarks"):
        analyse_items([], orientation="smpl")


def test_failed_fits_fall_back_to_the_landmark_geometry(crops):
    from posedive.fitting import FitConfig
    from posedive.pose.blazepose import BlazePoseEstimator

    impossible = OrientationFitter(FitConfig(max_error_3d_mm=0.01, camera_iterations=5, iterations=5))
    chunk = [(item.key, item.data) for item in crops[:4] + crops[-1:]]
    with BlazePoseEstimator() as estimator:
        records = _analyse_with(estimator, chunk, impossible)
    people = [r for r in records if r.person_found]
    assert people and all(r.orientation_source == "landmarks" and r.azimuth_deg is not None for r in people)
    assert records[-1].orientation_source is None


def test_splits_command_names_the_orientation_source(tmp_path):
    import json
    import shutil

    from typer.testing import CliRunner

    from posedive.cli import app

    source = tmp_path / "market"
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        (source / folder).mkdir(parents=True)
    for path in sorted((FIXTURE / "bounding_box_train").glob("*.jpg"))[:16]:
        shutil.copy(path, source / "bounding_box_train" / path.name)
    args = ["splits", str(source), "--by", "viewpoint", "--regions", "orientation", "-o", str(tmp_path / "out"),
            "-j", "1", "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, args + ["--orientation", "fit"])
    assert result.exit_code == 0, result.output
    assert "Body orientation (fit) from: fit" in result.output
    report = json.loads((tmp_path / "out" / "split.json").read_text())
    assert report["orientation"] == "fit" and sum(report["orientation_sources"].values()) == 16
    assert report["orientation_sources"].get("fit", 0) >= 12
    bad = CliRunner().invoke(app, args + ["--orientation", "smpl"])
    assert bad.exit_code == 2 and "--orientation must be fit or landmarks" in bad.output
