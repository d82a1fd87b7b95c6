"""A release built by the real builder (test doubles for the models) exported to the Market-1501 layout
and merged into Re-ID training, through the library and through the CLI."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import torch
from doubles import double_stages
from frame_helpers import frame_recipe
from layouts import make_market
from PIL import Image
from typer.testing import CliRunner

from posedive.builder import build_release
from posedive.cli import app
from posedive.errors import InputError
from posedive.reid.data import generated_camid, read_market_layout, with_release
from posedive.reid.export import EXPORT_JSON, MAPPING_CSV, _jpeg_bytes, export_market1501
from posedive.release import Release

MARKET_RULE = re.compile(r"([-\d]+)_c(\d)")  # the rule torchreid, fast-reid and CLIP-ReID use
FOLDERS = ("bounding_box_train", "query", "bounding_box_test")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(source_root, release_root)``: the frame-test Market replica (cameras 1-3) and its release."""
    tmp_path = tmp_path_factory.mktemp("reid-release")
    recipe = frame_recipe(tmp_path)
    build_release(recipe, stages=double_stages(), show_progress=False)
    return tmp_path / "market", recipe.release_dir


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def parse_folder(folder):
    names = sorted(p.name for p in folder.iterdir())
    parsed = [MARKET_RULE.search(name) for name in names]
    assert all(parsed), [n for n, m in zip(names, parsed) if m is None]
    return names, [(int(m.group(1)), int(m.group(2))) for m in parsed]


def test_export_parses_with_the_market_rule_and_keeps_the_counts(built, tmp_path):
    source, release_root = built
    release = Release.open(release_root)
    samples = {s["key"]: s for s in release.iter_samples(decode=False)}
    source_files = {folder: sorted(p.name for p in (source / folder).iterdir()) for folder in FOLDERS}
    source_train_pids = {int(MARKET_RULE.search(n).group(1)) for n in source_files["bounding_box_train"]}

    report = export_market1501(release_root, source, tmp_path / "export", camid="new", show_progress=False)
    out = tmp_path / "export"
    assert report.camid == 4  # the source uses cameras 1, 2, 3
    assert report.generated == len(samples) == release.manifest.samples > 0
    for folder in FOLDERS:
        names, _ = parse_folder(out / folder)
        expected = len(source_files[folder]) + (len(samples) if folder == "bounding_box_train" else 0)
        assert len(names) == expected == report.counts[folder]
        assert set(source_files[folder]) <= set(names)

    names, parsed = parse_folder(out / "bounding_box_train")
    generated = {n: pc for n, pc in zip(names, parsed) if n not in source_files["bounding_box_train"]}
    assert all(n.endswith(".jpg") for n in generated) and len(generated) == len(samples)
    assert {camid for _, camid in generated.values()} == {4}
    assert {pid for pid, _ in generated.values()} <= source_train_pids

    with open(out / MAPPING_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["key"] for row in rows) == sorted(samples)
    for row in rows:
        sample = samples[row["key"]]
        file = out / row["file"]
        pid, camid = generated[file.name]
        assert pid == int(row["pid"]) == sample["provenance"]["source"]["pid"] and camid == int(row["camid"])
        assert file.read_bytes() == sample["image"]  # JPEG samples are copied byte for byte
        assert row["source_image"] == sample["provenance"]["source"]["image"]
    sidecar = json.loads((out / EXPORT_JSON).read_text())
    assert sidecar["camid"] == 4 and sidecar["generated"] == len(samples)
    assert sidecar["release"]["recipe_hash"] == release.manifest.recipe_hash

    # posedive's own Market reader sees the same identities, with the generated images added.
    before, after = read_market_layout(source), read_market_layout(out)
    assert len(after.train) == len(before.train) + len(samples)
    assert {i.pid for i in after.train} == {i.pid for i in before.train}
    assert len(after.query) == len(before.query) and len(after.gallery) == len(before.gallery)


def test_export_by_default_gives_each_image_its_reference_camera(built, tmp_path, caplog):
    """Readers that assert 1 <= camid <= 6 load the default export: it holds only the source's cameras."""
    source, release_root = built
    samples = {s["key"]: s for s in Release.open(release_root).iter_samples(decode=False)}
    source_names = {p.name for p in (source / "bounding_box_train").iterdir()}
    with caplog.at_level("WARNING", logger="posedive.reid.export"):
        report = export_market1501(release_root, source, tmp_path / "export", show_progress=False)
    assert report.camid == "reference" and "reference images" in report.summary()
    assert not [r for r in caplog.records if "refuse" in r.getMessage()]
    with open(tmp_path / "export" / MAPPING_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["key"] for row in rows) == sorted(samples)
    for row in rows:
        name = row["file"].removeprefix("bounding_box_train/")
        pid, camid = (int(group) for group in MARKET_RULE.search(name).groups())
        assert camid == int(row["camid"]) == samples[row["key"]]["provenance"]["source"]["camid"]
        assert pid == samples[row["key"]]["provenance"]["source"]["pid"] and name not in source_names
    _, parsed = parse_folder(tmp_path / "export" / "bounding_box_train")
    assert {camid for _, camid in parsed} <= {1, 2, 3}
    assert json.loads((tmp_path / "export" / EXPORT_JSON).read_text())["camid"] == "reference"


def test_export_warns_when_readers_would_refuse_the_camera_id(built, tmp_path, caplog):
    source, release_root = built
    with caplog.at_level("WARNING", logger="posedive.reid.export"):
        export_market1501(release_root, source, tmp_path / "seven", camid=7, show_progress=False)
    assert any("1 <= camid <= 6" in record.getMessage() for record in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="posedive.reid.export"):
        export_market1501(release_root, source, tmp_path / "five", camid=5, show_progress=False)
    assert not any("1 <= camid <= 6" in record.getMessage() for record in caplog.records)


def test_export_cli_with_a_chosen_camera_and_refusals(built, tmp_path):
    source, release_root = built
    runner = CliRunner()
    out = tmp_path / "export"

    def args(destination):
        return ["export", str(release_root), "--format", "market1501", "--source-root", str(source),
                "--out", str(destination), "--no-progress"]

    result = runner.invoke(app, args(out) + ["--camid", "9"])
    assert result.exit_code == 0, result.output
    assert "camera id 9" in result.output
    _, parsed = parse_folder(out / "bounding_box_train")
    assert sum(camid == 9 for _, camid in parsed) == Release.open(release_root).manifest.samples

    again = runner.invoke(app, args(out))
    assert again.exit_code == 2 and "exists" in again.output
    wrong_camid = runner.invoke(app, args(tmp_path / "other") + ["--camid", "12"])
    assert wrong_camid.exit_code == 2 and "single digit" in wrong_camid.output
    assert not (tmp_path / "other").exists() and not list(tmp_path.glob("other.tmp-*"))

    other_source = make_market(tmp_path / "other-market", train_pids=(3, 4))
    with pytest.raises(ValueError, match="not a training identity"):
        export_market1501(release_root, other_source, tmp_path / "mismatch", show_progress=False)
    assert not (tmp_path / "mismatch").exists() and not list(tmp_path.glob("mismatch.tmp-*"))


def test_png_samples_are_exported_as_jpeg():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 16), (200, 30, 30)).save(buffer, format="PNG")
    converted = _jpeg_bytes(buffer.getvalue(), "png")
    with Image.open(io.BytesIO(converted)) as image:
        assert image.format == "JPEG" and image.size == (8, 16)


def test_release_merges_into_training_with_its_own_camera(built):
    source, release_root = built
    data = read_market_layout(source)
    merged = with_release(data, release_root)
    generated = [item for item in merged.train if item.generated]
    assert len(generated) == Release.open(release_root).manifest.samples
    assert {item.camid for item in generated} == {4} and len(merged.train) == len(data.train) + len(generated)
    assert merged.query == data.query and merged.gallery == data.gallery
    assert generated[0].open().mode == "RGB"
    assert generated_camid({1, 2, 3}, 2) == 2
    with pytest.raises(InputError, match="every camera id"):
        generated_camid(set(range(1, 10)))


def test_reid_train_and_eval_cli_print_the_comparison(built, tmp_path, one_thread):
    source, release_root = built
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "epochs: 2\nmax_steps_per_epoch: 2\nbatch_p: 3\nbatch_k: 2\nwarmup_epochs: 1\nheight: 32\nwidth: 16\n"
        "pad: 2\nnum_workers: 0\neval_batch_size: 16\n"
        "resnet_config: {embedding_size: 8, hidden_sizes: [8, 16], depths: [1, 1], layer_type: basic}\n"
    )
    runner = CliRunner()
    out = tmp_path / "runs"
    result = runner.invoke(app, ["reid", "train", "--source-root", str(source), "--release", str(release_root),
                                 "--out", str(out), "--config", str(config), "--random-init", "--no-progress"])
    assert result.exit_code == 0, result.output
    comparison = json.loads((out / "comparison.json").read_text())
    assert list(comparison) == ["baseline", "+posedive"]
    for label, folder in (("baseline", "baseline"), ("+posedive", "posedive")):
        metrics = json.loads((out / folder / "metrics.json").read_text())
        assert metrics["label"] == label and 0 <= metrics["mAP"] <= 100 and metrics["num_queries"] == 2
        assert len((out / folder / "losses.jsonl").read_text().splitlines()) == 4
        run = json.loads((out / folder / "run.json").read_text())
        generated = Release.open(release_root).manifest.samples if label == "+posedive" else 0
        assert run["generated_images"] == generated and run["train_images"] == 30 + generated
        assert run["generated_camid"] == (4 if generated else None)
        assert "+posedive" in result.output and "gain" in result.output

    evaluated = runner.invoke(app, ["reid", "eval", str(out / "baseline"), str(out / "posedive"),
                                    "--source-root", str(source), "--no-progress"])
    assert evaluated.exit_code == 0, evaluated.output
    for label in ("baseline", "+posedive"):
        row = next(line for line in evaluated.output.splitlines() if f" {label} " in line)
        assert f"{comparison[label]['mAP']:.1f}" in row  # the saved model reproduces its metrics

    missing = runner.invoke(app, ["reid", "train", "--source-root", str(source), "--out", str(out / "x"),
                                  "--no-baseline", "--no-progress"])
    assert missing.exit_code == 2 and "--no-baseline needs --release" in missing.output
