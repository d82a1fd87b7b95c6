"""The README's main job, end to end with every real stage: the demo recipe built through the CLI
(anny bodies, pyrender, BlazePose, the two-branch demo generator), on the real pedestrian crops."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from posedive import paths
from posedive.cli import app
from posedive.release import Release

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes" / "demo.yaml"


@pytest.fixture(scope="module")
def demo_release(tmp_path_factory):
    """The demo recipe, one planned image per identity, written to a temporary output folder."""
    if not (REPO / "models" / "demo-generator").is_dir():
        pytest.fail("models/demo-generator is missing: train it with `posedive train-generator configs/generator/demo.yaml`")
    tmp = tmp_path_factory.mktemp("demo")
    recipe = yaml.safe_load(DEMO.read_text())
    recipe["source"]["root"] = str(REPO / "tests" / "fixtures" / "vtest_market")
    recipe["generator"]["weights"] = str(REPO / "models" / "demo-generator")
    recipe["images_per_pid"] = 1
    recipe["output"]["dir"] = str(tmp / "releases")
    path = tmp / "demo.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(app, ["build", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    return tmp / "releases" / recipe["name"] / recipe["version"], recipe


def test_demo_release_is_complete_and_verifiable(demo_release):
    root, recipe = demo_release
    release = Release.open(root)
    manifest = release.manifest
    assert release.verify() == []
    assert manifest.identities == 12 and manifest.totals.work_units == 12
    assert manifest.totals.accepted + manifest.totals.short_units == 12
    assert manifest.samples == manifest.totals.accepted > 0
    assert manifest.estimator == "blazepose"
    assert manifest.generator.id.endswith("demo-generator") and "demo" in manifest.generator.description.lower()
    card = (root / paths.CARD).read_text()
    assert "configs:" in card and "non-commercial research only" in card


def test_demo_samples_come_from_the_real_stages(demo_release):
    root, recipe = demo_release
    for sample in Release.open(root).iter_samples():
        prov = sample["provenance"]
        assert sample["image"].size == (192, 384)
        assert prov["body"]["model"] == "anny" and prov["body"]["pose_id"].startswith("deepmimic-")
        assert 0 <= prov["camera"]["elevation_deg"] <= 30
        for stage in ("reference", "target", "generated"):
            assert prov["filter"][stage]["kept"] and len(prov["filter"][stage]["confidences"]) == 17
        assert prov["filter"]["generated"]["score"] >= recipe["filter"]["tau_gen"]
        assert prov["filter"]["generated"]["difference"] <= recipe["filter"]["eps_gen"]
        depth = sample["depth"]
        assert depth.size == (192, 384) and depth.getextrema()[1] > 0


def test_demo_release_loads_with_datasets(demo_release):
    import datasets

    root, _ = demo_release
    manifest = Release.open(root).manifest
    ds = datasets.load_dataset(str(root), split="train", cache_dir=str(root.parent / "hf-cache"))
    assert len(ds) == manifest.samples
    assert ds[0]["json"]["generator"]["sha256"] == manifest.generator.sha256


def test_demo_samples_show_upright_poses_with_their_tags(demo_release):
    root, _ = demo_release
    for sample in Release.open(root).iter_samples():
        tags = set(sample["provenance"]["body"]["pose_tags"])
        assert "upright" in tags and not tags & {"acrobatics", "floor"}
