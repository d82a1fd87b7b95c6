"""Body orientation, pose embeddings and ``posedive stats`` on a source and a release built from real
pedestrian crops."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from pose_images import CROPS, RENDER_AZIMUTHS, facing, market_sized, needs_opencv_data, pedestrian_crops

from posedive.analysis.embedding import fit_pca, pose_embedding
from posedive.analysis.orientation import angular_difference, azimuth_histogram, azimuth_sector, estimate_body_azimuth
from posedive.analysis.stats import uniformity
from posedive.pose.keypoints import BLAZEPOSE33_KEYPOINTS
from posedive.schema import COCO17_KEYPOINTS


# ------------------------------------------------------------------------------------ orientation
def turned_body(azimuth_deg: float, twist_deg: float = 0.0) -> np.ndarray:
    """World landmarks (camera-aligned: x right, y down, z away) of a body seen from ``azimuth_deg``:
    at 0 its left shoulder is on the image's right, at 90 its left side faces the camera."""
    world = np.zeros((33, 3))
    a = math.radians(azimuth_deg)
    # the body's left direction in camera axes: (cos a, 0, -sin a)
    for name, half_width, height, extra in (("shoulder", 0.2, -0.5, twist_deg), ("hip", 0.12, 0.0, 0.0)):
        b = a + math.radians(extra)
        left = np.array([math.cos(b), 0.0, -math.sin(b)]) * half_width
        world[BLAZEPOSE33_KEYPOINTS.index(f"left_{name}")] = left + [0, height, 0]
        world[BLAZEPOSE33_KEYPOINTS.index(f"right_{name}")] = -left + [0, height, 0]
    return world


@pytest.mark.parametrize("azimuth", [0.0, 30.0, 90.0, 135.0, 180.0, 270.0, 359.0])
def test_azimuth_of_a_constructed_body(azimuth):
    assert angular_difference(estimate_body_azimuth(turned_body(azimuth)), azimuth) < 1e-6
    assert 0 <= estimate_body_azimuth(turned_body(azimuth)) < 360


def test_twisted_torso_averages_shoulders_and_hips():
    estimate = estimate_body_azimuth(turned_body(0.0, twist_deg=40.0))
    assert 0 < estimate < 40


def test_azimuth_rejects_degenerate_input():
    with pytest.raises(ValueError, match="undefined"):
        estimate_body_azimuth(np.zeros((33, 3)))
    with pytest.raises(ValueError, match="33, 3"):
        estimate_body_azimuth(np.zeros((17, 3)))


def test_sectors_and_histogram_bins():
    assert [azimuth_sector(a) for a in (10, 350, 80, 200, 300)] == ["front", "front", "left", "back", "right"]
    counts = azimuth_histogram([359.0, 1.0, 14.9, 15.0, 180.0])
    assert counts[0] == 3 and counts[1] == 1 and counts[6] == 1 and sum(counts) == 5
    assert uniformity([5] * 12) == pytest.approx(1.0)
    assert uniformity([12] + [0] * 11) == 0.0
    assert uniformity([0] * 12) is None


def test_azimuth_of_rendered_bodies_matches_the_virtual_camera(estimator, renders):
    """posedive's renderer places its camera at a known azimuth (same convention); BlazePose on the
    normal map must recover it."""
    results = estimator.analyse([conditions.normal for conditions in renders])
    errors = [angular_difference(estimate_body_azimuth(r.world_landmarks), c.camera.azimuth_deg)
              for r, c in zip(results, renders) if r.world_landmarks is not None]
    assert [c.camera.azimuth_deg for c in renders] == list(RENDER_AZIMUTHS)
    assert len(errors) >= len(renders) - 1
    assert np.median(errors) < 15 and max(errors) < 45, errors


@needs_opencv_data
def test_azimuth_on_pedestrians_walking_left_right_and_towards_the_camera(estimator):
    """Walking directions were read from the video; back views are left out (BlazePose sometimes
    reads a low-resolution back view as a front view, see the orientation module)."""
    names = [name for name, *_ in CROPS if facing(name) != "back"]
    crops = pedestrian_crops()
    results = estimator.analyse([crops[name] for name in names])
    mirrored = estimator.analyse([np.ascontiguousarray(crops[name][:, ::-1]) for name in names])
    for name, result, mirror in zip(names, results, mirrored):
        azimuth = estimate_body_azimuth(result.world_landmarks)
        if facing(name) == "front":
            assert angular_difference(azimuth, 0) < 60, (name, azimuth)
        else:  # walking sideways (and a little towards or away from the camera): the visible side
            assert (0 < azimuth < 180) == (facing(name) == "left"), (name, azimuth)
            assert angular_difference(azimuth, 0) > 30 and angular_difference(azimuth, 180) > 30, (name, azimuth)
        # a mirrored photograph shows the body from the mirrored direction
        assert angular_difference(estimate_body_azimuth(mirror.world_landmarks), -azimuth) < 30, name


# -------------------------------------------------------------------------------------- embedding
def test_embedding_ignores_position_and_scale():
    rng = np.random.default_rng(0)
    keypoints = np.c_[rng.uniform(0, 60, size=(17, 2)), rng.uniform(0, 1, 17)]
    moved = keypoints.copy()
    moved[:, :2] = moved[:, :2] * 3.5 + [100, -40]
    np.testing.assert_allclose(pose_embedding(keypoints), pose_embedding(moved), atol=1e-5)
    assert pose_embedding(keypoints).shape == (34,)
    raised = keypoints.copy()
    raised[COCO17_KEYPOINTS.index("left_wrist"), 1] -= 20  # a different pose, a different embedding
    assert not np.allclose(pose_embedding(raised), pose_embedding(keypoints))


def test_embedding_rejects_nobody():
    with pytest.raises(ValueError, match="degenerate"):
        pose_embedding(np.zeros((17, 3)))
    with pytest.raises(ValueError, match="17, 2"):
        pose_embedding(np.zeros((18, 3)))


def test_pca_recovers_the_main_axis():
    rng = np.random.default_rng(1)
    direction = rng.normal(size=34)
    direction /= np.linalg.norm(direction)
    data = rng.normal(size=(200, 1)) * 5 * direction + rng.normal(scale=0.1, size=(200, 34))
    pca = fit_pca(data)
    assert abs(float(np.dot(pca.components[0], direction))) > 0.99
    assert pca.explained_variance_ratio[0] > 0.9 > pca.explained_variance_ratio[1]
    assert pca.transform(data).shape == (200, 2)
    assert fit_pca(data) == pca


@needs_opencv_data
def test_real_crops_at_two_resolutions_embed_close_together(estimator):
    crops = pedestrian_crops()
    names = list(crops)
    full = [pose_embedding(e.keypoints) for e in estimator.estimate([crops[n] for n in names])]
    small = [pose_embedding(e.keypoints) for e in estimator.estimate([market_sized(crops[n]) for n in names])]
    same = np.mean([np.linalg.norm(a - b) for a, b in zip(full, small)])
    other = np.mean([np.linalg.norm(full[i] - full[j]) for i in range(len(names)) for j in range(len(names)) if i != j])
    assert same < 0.5 * other


# ------------------------------------------------------------------------------ posedive stats
@pytest.fixture(scope="module")
def demo_data(tmp_path_factory, renders):
    """A Market-1501 source of the real crops (three cameras), and a release shard holding their
    mirror images (provenance: source camera 1), renders of the body at known virtual-camera azimuths
    (provenance as the builder writes it: source camera 2 and ``camera.azimuth_deg``) and a blank."""
    import webdataset as wds
    from PIL import Image

    def jpeg(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()

    root = tmp_path_factory.mktemp("stats")
    source = root / "market"
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        (source / folder).mkdir(parents=True)
    release = root / "releases" / "demo" / "1.0.0"
    (release / "data").mkdir(parents=True)
    (release / ".build").mkdir()
    with wds.TarWriter(str(release / ".build" / "train-00000.partial.tar")) as writer:  # must be skipped
        writer.write({"__key__": "unfinished", "jpg": jpeg(market_sized(pedestrian_crops()["f0_front"]))})
    with wds.TarWriter(str(release / "data" / "train-00000.tar")) as writer:
        for i, (name, crop) in enumerate(pedestrian_crops().items()):
            image = Image.fromarray(market_sized(crop))
            for folder, camera in (("bounding_box_train", i % 3), ("bounding_box_test", i % 3), ("query", (i + 1) % 3)):
                image.save(source / folder / f"{i + 1:04d}_c{1 + camera}s1_{i:06d}_00.jpg")  # JPEG quality 75
            meta = {"source": {"camid": 1, "pid": i + 1}}
            writer.write({"__key__": f"p{i:04d}_s0", "jpg": jpeg(crop[:, ::-1]), "json": json.dumps(meta).encode()})
        for j, conditions in enumerate(renders):
            meta = {"source": {"camid": 2, "pid": 100}, "camera": {"azimuth_deg": conditions.camera.azimuth_deg}}
            writer.write({"__key__": f"r{j:04d}_s0", "jpg": jpeg(conditions.normal), "json": json.dumps(meta).encode()})
        writer.write({"__key__": "blank_s0", "jpg": jpeg(np.full((128, 64, 3), 200, np.uint8)), "json": b"{}"})
    return source, release


@needs_opencv_data
def test_stats_on_a_source_and_a_release(demo_data, tmp_path, caplog):
    from PIL import Image

    from posedive.analysis.inputs import resolve_input
    from posedive.analysis.stats import StatsReport, compute_stats, write_report

    source, release = demo_data
    inputs = [resolve_input(source), resolve_input(release)]
    assert [i.kind for i in inputs] == ["source", "release"]
    result = compute_stats(inputs, workers=2, cache_dir=tmp_path / "cache")
    path = write_report(tmp_path / "out", result, inputs)

    saved = StatsReport.model_validate_json(path.read_text())
    market, demo = saved.inputs
    assert market.name == "Market-1501" and demo.name == "demo 1.0.0"
    assert market.overall.images == 9 and market.overall.persons_found == 9
    assert sorted(market.cameras) == ["c1", "c2", "c3"]
    assert sum(c.images for c in market.cameras.values()) == 9
    assert demo.overall.images == 22 and demo.overall.persons_found >= 20
    assert sorted(demo.cameras) == ["c1", "c2", "generated"] and demo.cameras["generated"].persons_found == 0
    rendered = demo.cameras["c2"]
    assert rendered.requested_azimuth_histogram == [1] * 12
    assert rendered.azimuth_within_45deg >= 0.9 and rendered.azimuth_error_median_deg < 15
    assert market.overall.requested_azimuth_histogram is None
    assert saved.orientation == "fit" and sum(market.overall.orientation_sources.values()) == 9
    assert sum(market.overall.azimuth_histogram) == 9
    assert sum(market.overall.sectors.values()) == pytest.approx(1.0)
    assert 0 < market.overall.azimuth_uniformity < 1
    assert saved.embedding is not None and len(saved.embedding.components) == 2
    # the same people mirrored: the front sector holds the same share, left and right swap
    assert demo.cameras["c1"].sectors["front"] == pytest.approx(market.overall.sectors["front"], abs=0.12)

    lines = [json.loads(line) for line in (tmp_path / "out" / market.poses_file).read_text().splitlines()]
    assert len(lines) == 9 and all(line["embedding_2d"] is not None for line in lines)
    assert all(line["orientation_source"] in ("fit", "landmarks") for line in lines)
    assert [line["key"] for line in lines] == sorted(line["key"] for line in lines)
    for name in saved.plots:
        with Image.open(tmp_path / "out" / name) as image:
            assert image.format == "PNG" and image.width > 300
    assert {"orientation.png", "poses.png", "Market-1501.cameras.png"} <= set(saved.plots)

    # Cached: a second run analyses nothing and answers the same.
    caplog.set_level("INFO", logger="posedive.analysis.images")
    again = compute_stats(inputs, workers=2, cache_dir=tmp_path / "cache")
    assert "9 of 9 images answered from the cache" in caplog.text
    assert "22 of 22 images answered from the cache" in caplog.text
    assert again.records == result.records
    assert again.report.inputs[0].overall == result.report.inputs[0].overall


@needs_opencv_data
def test_stats_command(demo_data, tmp_path):
    from typer.testing import CliRunner

    from posedive.cli import app

    source, _ = demo_data
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["stats", str(source), "--format", "market1501", "--split", "query",
                                      "-o", str(out), "-j", "1", "--no-cache", "--orientation", "landmarks"])
    assert result.exit_code == 0, result.output
    assert "person found in 9/9 images" in result.output and "(from landmarks 9)" in result.output
    report = json.loads((out / "stats.json").read_text())
    assert report["orientation"] == "landmarks"
    assert report["inputs"][0]["overall"]["orientation_sources"] == {"landmarks": 9}
    assert sorted(report["inputs"][0]["cameras"]) == ["c1", "c2", "c3"]
    assert (out / "orientation.png").is_file()

    bad = CliRunner().invoke(app, ["stats", str(tmp_path / "missing"), "-o", str(out)])
    assert bad.exit_code == 2 and "neither a recipe" in bad.output
    unknown = CliRunner().invoke(app, ["stats", str(tmp_path), "-o", str(out)])
    assert unknown.exit_code == 2 and "--format" in unknown.output


@needs_opencv_data
def test_stats_of_a_recipe_source_reuses_the_cache(demo_data, tmp_path, caplog):
    from typer.testing import CliRunner

    from posedive.cli import app

    source, _ = demo_data
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: demo\nversion: 1.0.0\nsource: {{format: market1501, root: {source}}}\n"
                      "generator: {weights: ./weights}\n")
    args = ["stats", str(recipe), "-o", str(tmp_path / "out"), "-j", "1", "--cache-dir", str(tmp_path / "cache")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "person found in 9/9 images" in first.output
    caplog.set_level("INFO", logger="posedive.analysis.images")
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and "9 of 9 images answered from the cache" in caplog.text
