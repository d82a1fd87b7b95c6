"""The body-shape panel of a release and the pose plot's tag colours, checked on their data (not pixels)."""

import io
import json

import numpy as np
import pytest
from doubles import DoubleEstimator, DoubleGenerator, DoubleRenderer
from frame_helpers import frame_recipe
from matplotlib import colormaps
from PIL import Image

from posedive import paths
from posedive.builder import BuildStages, build_release
from posedive.conditions import body_panel
from posedive.conditions.coverage import tag_colours
from posedive.conditions.posebank.tags import SHOWN_TAGS
from posedive.provenance import BodyShapeRecord
from posedive.release.plots import paired_samples, release_body_panel
from posedive.shards import iter_provenance, iter_shard_members

LABELS = ["height", "weight", "muscle"]


class DoubleShapes:
    """A shape stage that 'fits' each identity a body of its own (values follow the pid) and falls
    back to a draw for pid 7 (its images are dark in the fixture)."""

    def shape(self, pid, images):
        values = [round(0.1 * (pid % 10), 3), round(0.05 * pid, 3), 0.5]
        if pid == 7:
            return BodyShapeRecord(mode="reference", source="sampled", labels=LABELS, values=values, confidence=0.1,
                                   fell_back=True, fallback_reason="double: too dark")
        return BodyShapeRecord(mode="reference", source="reference", labels=LABELS, values=values, confidence=0.9,
                               images_used=len(images), images_total=len(images))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    recipe = frame_recipe(tmp_path_factory.mktemp("bodies"))
    stages = BuildStages(conditions=DoubleRenderer(), estimator=DoubleEstimator(), generator=DoubleGenerator(),
                         shapes=DoubleShapes())
    report = build_release(recipe, stages=stages, show_progress=False)
    shard_files = [recipe.release_dir / shard.path for shard in report.manifest.shards]
    return recipe, report, list(iter_provenance(shard_files)), shard_files


def test_the_panels_values_are_each_identitys_recorded_body_shape(built):
    recipe, report, records, _ = built
    panel = release_body_panel(records)
    recorded = {r["source"]["pid"]: r["body_shape"] for r in records}
    assert panel.labels == LABELS
    assert [i.pid for i in panel.identities] == sorted(recorded)
    for identity in panel.identities:
        assert identity.values == pytest.approx(recorded[identity.pid]["values"])
        assert identity.source == recorded[identity.pid]["source"]
    assert panel.values_of("weight") == pytest.approx({pid: r["values"][1] for pid, r in recorded.items()})
    assert {i.pid: i.source for i in panel.identities}[7] == "sampled"
    assert panel.paired == body_panel.paired_identities(list(recorded)) and len(panel.paired) == 4
    assert "plots/bodies.png" in report.manifest.files and Image.open(recipe.release_dir / "plots/bodies.png").size[0]
    card = (recipe.release_dir / paths.CARD).read_text()
    assert "## Body shapes" in card and card.count("![plots/bodies.png](plots/bodies.png)") == 1


def test_silhouette_pairs_are_the_reference_segmented_and_the_stored_depth(built, monkeypatch, tmp_path):
    from posedive.release.plots import write_body_panel

    recipe, _, records, shard_files = built
    drawn = {}
    monkeypatch.setattr(body_panel, "plot_body_panel", lambda panel, pairs, path, title: drawn.update(pairs))
    seen = []

    def segmenter(images):
        seen.extend(images)
        return [np.asarray(image)[..., 0] > 100 for image in images]

    shard_of = {r["key"]: shard for shard in shard_files for r in iter_provenance([shard])}
    panel = write_body_panel(recipe, records, shard_of, tmp_path / "bodies.png", segmenter=segmenter)
    chosen = paired_samples(records, panel.paired)
    assert sorted(drawn) == panel.paired == sorted(chosen)
    depth = {key: np.asarray(Image.open(io.BytesIO(data)))
             for shard in shard_files for key, field, data in iter_shard_members(shard) if field == "depth.png"}
    root = recipe.resolve(recipe.source.root)
    for index, pid in enumerate(panel.paired):
        record = chosen[pid]
        assert record["source"]["pid"] == pid
        # the identity's sample nearest a front or back view
        nearest = min(body_panel.off_axis_deg(r["camera"]["azimuth_deg"], r["camera"]["elevation_deg"])
                      for r in records if r["source"]["pid"] == pid)
        assert body_panel.off_axis_deg(record["camera"]["azimuth_deg"], record["camera"]["elevation_deg"]) == nearest
        reference, target = drawn[pid]
        assert (target == (depth[record["key"]] > 0)).all()
        expected = np.asarray(Image.open(root / record["source"]["image"]).convert("RGB"))
        assert (seen[index] == expected).all() and (reference == (expected[..., 0] > 100)).all()


def test_bodies_no_fit_made_draw_no_values_and_finish_without_a_segmentation_model(tmp_path, monkeypatch):
    def no_model(images):
        raise AssertionError("a release whose samples record no fitted shape is finished without a model")

    monkeypatch.setattr(body_panel, "segment_references", no_model)
    recipe = frame_recipe(tmp_path)  # body.shape: reference, but the stages fit nothing (the renderer's one body)
    stages = BuildStages(conditions=DoubleRenderer(), estimator=DoubleEstimator(), generator=DoubleGenerator())
    report = build_release(recipe, stages=stages, show_progress=False)
    records = list(iter_provenance([recipe.release_dir / s.path for s in report.manifest.shards]))
    panel = release_body_panel(records)
    assert panel.labels == [] and {i.source for i in panel.identities} == {"fixed"}
    assert (recipe.release_dir / "plots/bodies.png").is_file()


def test_pose_tag_colours_are_the_shown_tags_places_on_the_palette():
    palette = colormaps["tab20"]
    colours = tag_colours(["walk", "zz-custom", "acrobatics", "walk", "stand", "aa-custom"])
    assert list(colours) == ["acrobatics", "walk", "stand", "aa-custom", "zz-custom"]
    for tag in ("acrobatics", "walk", "stand"):
        assert colours[tag] == tuple(palette(SHOWN_TAGS.index(tag)))
    assert colours["aa-custom"] == tuple(palette((len(SHOWN_TAGS) + 3) % 20))
    assert colours["zz-custom"] == tuple(palette((len(SHOWN_TAGS) + 4) % 20))
    # one tag, one colour, whatever else a plot holds
    assert tag_colours(["walk"])["walk"] == colours["walk"]


def test_the_release_pose_plot_colours_samples_by_their_recorded_tags(built, monkeypatch, tmp_path):
    from posedive.conditions import coverage
    from posedive.release import plots

    recipe, _, records, shard_files = built
    tagged = [{**r, "body": {**r["body"], "pose_tags": ["upright", "walk"] if i % 2 else ["dance"]}}
              for i, r in enumerate(records)]
    captured = {}
    monkeypatch.setattr(coverage, "plot_poses", lambda coords, groups, path: captured.setdefault("groups", groups))
    monkeypatch.setattr(plots, "plot_samples", lambda *args: None)
    monkeypatch.setattr(plots, "write_body_panel", lambda *args: None)
    plots.write_release_plots(recipe, tmp_path, tagged, {r["key"]: shard_files[0] for r in tagged})
    assert captured["groups"] == ["walk" if i % 2 else "dance" for i in range(len(records))]
    assert json.dumps(captured["groups"])  # plain strings, as the legend shows them
