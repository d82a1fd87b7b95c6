"""The quality report of a release, checked against numbers computed here from the shards' files."""

import json
import tarfile

import numpy as np
import pytest
from doubles import DoubleEstimator, DoubleGenerator, DoubleRenderer, double_stages
from frame_helpers import frame_recipe
from PIL import Image

from posedive import paths
from posedive.builder import BuildStages, build_release
from posedive.release import Release
from posedive.release.quality import describe, quality_of


class NoIdentityGenerator(DoubleGenerator):
    """A generator that measures no identity similarity, as releases built before it was recorded."""

    identity_encoder = None
    identity_features = None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    # png: the stored image is the very image the similarity was measured on
    recipe = frame_recipe(tmp_path_factory.mktemp("quality"), output={"image_format": "png"})
    return recipe, build_release(recipe, stages=double_stages(), show_progress=False)


def _provenance(root, manifest):
    records = []
    for shard in manifest.shards:
        with tarfile.open(root / shard.path) as tar:
            records += [json.loads(tar.extractfile(m).read()) for m in tar if m.name.endswith(".json")]
    return records


def _rejected(root, manifest):
    lines = []
    for shard in range(len(manifest.shards)):
        lines += (root / paths.rejected_name(shard)).read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_quality_numbers_equal_those_computed_from_the_shards(built):
    recipe, report = built
    root, manifest = recipe.release_dir, report.manifest
    quality = Release.open(root).manifest.quality
    assert quality is not None and quality.version == 1 and quality.generator == manifest.generator.id
    records, rejected = _provenance(root, manifest), _rejected(root, manifest)
    attempts = len(records) + len(rejected)
    at = {stage: sum(e["stage"] == stage for e in rejected) for stage in ("reference", "target", "generated")}
    reached = [attempts, attempts - at["reference"], attempts - at["reference"] - at["target"]]
    for name, count in zip(("reference", "target", "generated"), reached):
        stage = quality.stages[name]
        assert (stage.reached, stage.reached - stage.passed) == (count, at[name])
        assert stage.rate == pytest.approx((count - at[name]) / count, abs=1e-6)
    accepted = np.array([r["filter"]["generated"]["difference"] for r in records])
    failed = np.array([e["scores"]["mean_abs_difference"] for e in rejected if e["stage"] == "generated"])
    for values, summary in ((accepted, quality.pose_difference.accepted), (failed, quality.pose_difference.rejected)):
        assert summary.count == len(values) > 0
        assert summary.mean == pytest.approx(values.mean(), abs=1e-6)
        assert summary.quantiles["0.5"] == pytest.approx(np.median(values), abs=1e-6)
        assert sum(summary.counts) == len(values)
        assert summary.counts == np.histogram(values, bins=summary.edges)[0].tolist()


def test_identity_similarity_is_the_generators_cosine_of_image_and_reference(built):
    recipe, report = built
    root = recipe.release_dir
    generator = DoubleGenerator()
    samples = list(Release.open(root).iter_samples())
    cosines = []
    for sample in samples:
        identity = sample["provenance"]["identity"]
        reference = Image.open(recipe.resolve(recipe.source.root) / sample["provenance"]["source"]["image"])
        a, b = generator.identity_features([reference.convert("RGB"), sample["image"]]).astype(np.float64)
        assert identity["encoder"] == "pixels-double"
        assert identity["cosine"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-5)
        cosines.append(identity["cosine"])
    similarity = report.manifest.quality.identity_similarity
    assert similarity.encoder == "pixels-double" and similarity.accepted.count == len(samples)
    assert similarity.accepted.mean == pytest.approx(np.mean(cosines), abs=1e-6)
    failed = [e["scores"]["identity_cosine"] for e in _rejected(root, report.manifest) if e["stage"] == "generated"]
    assert similarity.rejected.count == len(failed) > 0
    card = (root / paths.CARD).read_text()
    assert "### Quality" in card and "identity similarity (pixels-double, cosine)" in card
    assert card.count("![plots/quality.png](plots/quality.png)") == 1 and "plots/quality.png" in report.manifest.files
    assert Image.open(root / "plots/quality.png").size[0] > 0


def test_a_release_without_identity_similarity_finishes_and_says_not_recorded(tmp_path):
    recipe = frame_recipe(tmp_path)
    stages = BuildStages(conditions=DoubleRenderer(), estimator=DoubleEstimator(), generator=NoIdentityGenerator())
    manifest = build_release(recipe, stages=stages, show_progress=False).manifest
    assert manifest.samples > 0 and manifest.quality.identity_similarity is None
    assert all(s["provenance"]["identity"] is None for s in Release.open(recipe.release_dir).iter_samples())
    assert "| identity similarity | not recorded | not recorded |" in (recipe.release_dir / paths.CARD).read_text()
    older = json.loads((recipe.release_dir / paths.MANIFEST).read_text())
    del older["quality"]  # a manifest written before the quality section existed
    (recipe.release_dir / paths.MANIFEST).write_text(json.dumps(older))
    release = Release.open(recipe.release_dir)
    assert release.manifest.quality is None
    assert quality_of(release) == manifest.quality  # posedive stats computes it from the release's files
    lines = describe(quality_of(release))
    assert lines[-1] == "identity similarity: not recorded"
    passed = manifest.quality.stages["generated"]
    assert f"generated {passed.passed}/{passed.reached}" in lines[0]


def test_posedive_stats_prints_the_report_of_a_release_word_for_word(built):
    """The quantiles in brackets must reach the terminal as written, not be read as console markup."""
    from types import SimpleNamespace

    from posedive.commands import _common
    from posedive.commands.stats import _print_quality

    recipe, report = built
    item = SimpleNamespace(kind="release", location=recipe.release_dir, name="frame")
    with _common.console.capture() as captured:
        _print_quality(item)
    printed = " ".join(captured.get().split())
    for line in describe(report.manifest.quality):
        assert f"frame: {line}" in printed
    assert "[p5 " in printed
