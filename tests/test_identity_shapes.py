"""Each identity's body in the build (``body.shape``): requests carry the shape, the renderer draws it,
samples record it, and the shapes stage answers per identity (population draw or cached fit)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from doubles import DoubleEstimator, DoubleGenerator, DoubleRenderer
from frame_helpers import frame_recipe

from posedive.body.shape import ANNY_PHENOTYPES, AnnyPhenotype
from posedive.builder import BuildStages, build_release
from posedive.conditions import BodyConditionRenderer, PoseBank, RendererSpec
from posedive.conditions.shapes import IdentityShapes
from posedive.fitting.shape_cache import ShapeCache
from posedive.provenance import BodyShapeRecord
from posedive.recipe import BodyConfig
from posedive.schema import ConditionRequest

TESTS = Path(__file__).parent
BROAD = AnnyPhenotype(age=0.8, height=0.3, weight=0.95, gender=0.1)
SLIM = AnnyPhenotype(age=0.8, height=0.5, weight=0.05, gender=0.9)


class PerIdentityShapes:
    """A shapes stage that gives identity ``pid`` a recognisable body and counts its questions."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def shape(self, pid: int, images) -> BodyShapeRecord:
        self.asked.append(pid)
        assert images, "an identity's training images are handed to the stage"
        return BodyShapeRecord(mode="reference", source="reference", labels=list(ANNY_PHENOTYPES),
                               values=[pid / 100.0] * 6, estimated=["weight"], confidence=0.5,
                               images_used=len(images), images_total=len(images))


class ShapeRecordingRenderer(DoubleRenderer):
    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[float, ...] | None] = []

    def render(self, requests):
        self.shapes += [request.shape for request in requests]
        return super().render(requests)


def _provenance(release_dir: Path) -> list[dict]:
    records = []
    for shard in sorted(release_dir.glob("**/*.tar")):
        with tarfile.open(shard) as tar:
            records += [json.loads(tar.extractfile(m).read()) for m in tar.getmembers() if m.name.endswith(".json")]
    return records


def test_every_sample_records_its_identitys_body_and_the_targets_are_drawn_with_it(tmp_path):
    recipe = frame_recipe(tmp_path)
    shapes, renderer = PerIdentityShapes(), ShapeRecordingRenderer()
    stages = BuildStages(conditions=renderer, estimator=DoubleEstimator(), generator=DoubleGenerator(),
                         shapes=shapes)
    build_release(recipe, stages=stages, show_progress=False)
    records = _provenance(recipe.release_dir)
    assert records
    for record in records:
        shape = record["body_shape"]
        assert shape["values"] == [record["source"]["pid"] / 100.0] * 6
        assert (shape["mode"], shape["source"], shape["fell_back"], shape["confidence"]) == (
            "reference", "reference", False, 0.5)
    # Every target was asked for with its identity's shape, and each identity's shape was asked once.
    assert renderer.shapes and all(shape is not None for shape in renderer.shapes)
    assert len(shapes.asked) == len(set(shapes.asked))


def test_without_a_shapes_stage_the_samples_record_the_one_fixed_body(tmp_path):
    recipe = frame_recipe(tmp_path, body={"shape": "fixed"})
    renderer = ShapeRecordingRenderer()
    stages = BuildStages(conditions=renderer, estimator=DoubleEstimator(), generator=DoubleGenerator())
    build_release(recipe, stages=stages, show_progress=False)
    assert set(renderer.shapes) == {None}
    shapes = {json.dumps(r["body_shape"], sort_keys=True) for r in _provenance(recipe.release_dir)}
    assert [json.loads(s)["source"] for s in shapes] == ["fixed"]


# ------------------------------------------------------------------------------- the real renderer
@pytest.fixture(scope="module")
def renderer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shaped")
    bank = PoseBank.from_arrays(np.zeros((1, 72)), ["rest"], ["test"], ["rest"], [0], ["test"])
    bank.save(folder / "bank.npz")
    with BodyConditionRenderer(RendererSpec(bank_path=folder / "bank.npz", width=96, height=192, cache_root=None)) as r:
        yield r


def _width_profile(conditions) -> np.ndarray:
    """Silhouette width per image row, relative to the silhouette's height (the camera frames the body)."""
    mask = conditions.depth > 0
    rows = np.flatnonzero(mask.any(axis=1))
    return mask[rows.min():rows.max() + 1].sum(axis=1)[np.linspace(0, np.ptp(rows), 40).astype(int)] / len(rows)


def test_the_renderer_draws_the_requested_body_and_the_fixed_body_as_before(renderer):
    front = dict(pose_id="rest", elevation_deg=0.0, azimuth_deg=0.0)
    own = ConditionRequest(**front)
    broad, slim = (ConditionRequest(**front, shape=tuple(s.values())) for s in (BROAD, SLIM))
    again = ConditionRequest(**front, shape=tuple(BROAD.values()))
    sets = renderer.render([own, broad, slim, again])
    ids = [s.condition_id for s in sets]
    assert len(set(ids[:3])) == 3 and ids[1] == ids[3]
    # The fixed body's id is the id a request without a shape always had.
    payload_without_shape = renderer.condition_id(ConditionRequest(**front))
    assert ids[0] == payload_without_shape
    assert sets[0].body.shape == renderer.body.shape() and sets[1].body.shape == BROAD.values()
    widths = [_width_profile(s).mean() for s in sets]
    assert widths[1] > widths[0] * 1.05 and widths[1] > widths[2] * 1.05 and widths[2] < widths[0], widths
    assert np.array_equal(sets[1].depth, sets[3].depth)
    # A request naming the body's own shape draws the same pixels as one naming none.
    own_named = renderer.render([ConditionRequest(**front, shape=tuple(renderer.body.shape()))])[0]
    assert np.array_equal(own_named.depth, sets[0].depth) and np.array_equal(own_named.normal, sets[0].normal)


# --------------------------------------------------------------------------------- the shapes stage
def test_sampled_bodies_depend_on_the_recipe_and_the_identity_alone(tmp_path):
    config = BodyConfig(shape="sampled")
    first = IdentityShapes(config, "recipe-a", cache=ShapeCache(tmp_path))
    again = IdentityShapes(config, "recipe-a", cache=ShapeCache(tmp_path))
    other = IdentityShapes(config, "recipe-b", cache=ShapeCache(tmp_path))
    shapes = {pid: first.shape(pid, []) for pid in (1, 2)}
    assert shapes[1].values != shapes[2].values
    assert again.shape(2, []) == shapes[2] and other.shape(2, []).values != shapes[2].values
    assert shapes[1].source == "sampled" and shapes[1].labels == list(ANNY_PHENOTYPES)
    assert all(0.0 <= v <= 1.0 for v in shapes[1].values)
    assert IdentityShapes(BodyConfig(shape="fixed"), "recipe-a").shape(1, []) is None


def test_a_fit_is_made_once_per_identity_and_read_back_from_the_cache(tmp_path, monkeypatch):
    images = sorted((TESTS / "fixtures" / "vtest_market" / "bounding_box_train").glob("0001_*.jpg"))
    assert len(images) >= 2
    config = BodyConfig(shape="reference")
    made = IdentityShapes(config, "recipe-a", cache=ShapeCache(tmp_path)).shape(1, images)
    assert made.mode == "reference" and made.images_total == len(images)
    assert made.estimated == ["gender", "weight", "height"] and 0.0 <= made.confidence <= 1.0
    assert made.fell_back == (made.source == "sampled") == (made.confidence < config.shape_fit.min_confidence)

    import posedive.fitting.shape as fitting

    def no_fit(*args, **kwargs):
        raise AssertionError("the cached fit should have been read")

    monkeypatch.setattr(fitting, "estimate_identity_shape", no_fit)
    read = IdentityShapes(config, "recipe-b", cache=ShapeCache(tmp_path)).shape(1, list(reversed(images)))
    assert read.values == made.values or read.fell_back  # a fallback draw follows the recipe's seed
    assert read.confidence == made.confidence


def test_a_fit_below_the_confidence_falls_back_to_a_draw_and_says_so(tmp_path):
    images = sorted((TESTS / "fixtures" / "vtest_market" / "bounding_box_train").glob("0001_*.jpg"))
    cache = ShapeCache(tmp_path)
    sure = IdentityShapes(BodyConfig(shape="reference", shape_fit={"min_confidence": 0.0}), "r", cache=cache)
    never = IdentityShapes(BodyConfig(shape="reference", shape_fit={"min_confidence": 1.0}), "r", cache=cache)
    fitted, fallen = sure.shape(1, images), never.shape(1, images)
    assert (fitted.source, fitted.fell_back) == ("reference", False)
    assert (fallen.source, fallen.fell_back) == ("sampled", True) and "below 1.0" in fallen.fallback_reason
    sampled = IdentityShapes(BodyConfig(shape="sampled"), "r", cache=cache).shape(1, images)
    assert fallen.values == sampled.values and fallen.values != fitted.values
