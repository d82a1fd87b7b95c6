"""Real photographs and rendered bodies for the pose-estimation tests: pedestrian crops cut from
OpenCV's ``vtest.avi`` (a fixed camera over walking people) and ``messi5.jpg``, both committed under
``tests/fixtures/opencv_samples/`` (see its LICENSE.md), a blank image, a crop with
the legs cut off, the committed Market-1501-layout crops, and normal maps of the anny body rendered
from 12 azimuths by posedive's conditions stage.

The crop boxes were chosen by looking at the frames; the walking directions were read from the
person's motion over the following frames.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

OPENCV_SAMPLES = Path(__file__).parent / "fixtures" / "opencv_samples"  # OpenCV sample data, committed
VTEST_CROPS = OPENCV_SAMPLES / "vtest_crops"  # the CROPS below, cut losslessly from vtest.avi's frames
MESSI = OPENCV_SAMPLES / "messi5.jpg"

# (name, frame, box x0, y0, x1, y1, facing): facing is what the person does relative to the camera.
CROPS = (
    ("f0_back", 0, (240, 208, 295, 315), "back"),
    ("f0_front", 0, (490, 150, 540, 240), "front"),
    ("f0_walks_left", 0, (630, 232, 695, 328), "left"),
    ("f200_front", 200, (605, 255, 660, 375), "front"),
    ("f200_front_b", 200, (695, 245, 755, 360), "front"),
    ("f200_back", 200, (210, 185, 258, 272), "back"),
    ("f200_back_hood", 200, (78, 148, 118, 220), "back"),
    ("f400_walks_right", 400, (675, 292, 755, 418), "right"),
    ("f400_front", 400, (262, 195, 308, 292), "front"),
)
MARKET_SIZE = (64, 128)  # width, height of a Market-1501 crop

FIXTURE_MARKET = Path(__file__).parent / "fixtures" / "vtest_market"  # committed crops, Market-1501 layout
needs_fixture_market = pytest.mark.skipif(not FIXTURE_MARKET.is_dir(), reason="tests/fixtures/vtest_market is absent")

needs_opencv_data = pytest.mark.skipif(not VTEST_CROPS.is_dir() or not MESSI.is_file(),
                                       reason="tests/fixtures/opencv_samples is absent")


@functools.lru_cache(maxsize=1)
def pedestrian_crops() -> dict[str, np.ndarray]:
    """Full-resolution RGB crops, by name."""
    from PIL import Image

    return {name: np.asarray(Image.open(VTEST_CROPS / f"{name}.png").convert("RGB")) for name, *_ in CROPS}


def fixture_images(pattern: str) -> dict[str, np.ndarray]:
    """Committed crops matching ``pattern`` (relative to the fixture root), by file name."""
    from PIL import Image

    return {path.name: np.asarray(Image.open(path).convert("RGB")) for path in sorted(FIXTURE_MARKET.glob(pattern))}


def market_sized(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(image, MARKET_SIZE, interpolation=cv2.INTER_AREA)


def facing(name: str) -> str:
    return next(f for n, _, _, f in CROPS if n == name)


@functools.lru_cache(maxsize=1)
def messi() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(MESSI).convert("RGB"))


def blank() -> np.ndarray:
    return np.full((128, 64, 3), 200, dtype=np.uint8)


def legs_cut() -> np.ndarray:
    """A frontal walker cut at 55 % of the crop height: knees and feet are outside the image."""
    crop = pedestrian_crops()["f200_front"]
    return np.ascontiguousarray(crop[: int(crop.shape[0] * 0.55)])


def skip_without_system_libraries(render, *args):
    """``render(*args)``, skipping the test when a system library it needs (EGL) is missing; any other
    failure, a broken import of a required package included, fails the test."""
    from posedive.errors import MissingDependency

    try:
        return render(*args)
    except MissingDependency as error:
        pytest.skip(f"cannot render conditions here: {error} ({error.hint})")


RENDER_AZIMUTHS = tuple(float(a) for a in range(0, 360, 30))


@functools.lru_cache(maxsize=1)
def rendered_bodies(tmp_root: str) -> list:
    """Normal maps of the anny body in one bank pose, seen from 12 azimuths at 10 degrees elevation,
    rendered by posedive's own conditions stage (cached under ``tmp_root``)."""
    from posedive.conditions import load_condition_renderer
    from posedive.recipe import parse_recipe
    from posedive.schema import ConditionRequest

    # The whole DeepMimic bank, unselected, so the pose is the one these tests were written for.
    recipe = parse_recipe({"name": "filter-test", "version": "1.0.0", "source": {"format": "folder", "root": "x"},
                           "generator": {"weights": "x"}, "poses": {"source": "deepmimic"}}, base_dir=Path(tmp_root))
    with load_condition_renderer(recipe, cache_root=Path(tmp_root)) as renderer:
        pose_id = renderer.pose_ids()[2]
        return renderer.render([ConditionRequest(pose_id=pose_id, elevation_deg=10.0, azimuth_deg=a)
                                for a in RENDER_AZIMUTHS])
