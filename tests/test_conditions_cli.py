"""``posedive posebank``, ``posedive gallery`` and ``posedive report`` end to end, on a tiny recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from posedive.cli import app

runner = CliRunner()


@pytest.fixture()
def project(tmp_path: Path, monkeypatch) -> Path:
    """A recipe with a folder source of two identities and a pose bank imported from SMPL fits."""
    monkeypatch.setenv("POSEDIVE_CACHE_DIR", str(tmp_path / "cache"))
    for identity in ("0001", "0002"):
        folder = tmp_path / "images" / identity
        folder.mkdir(parents=True)
        Image.new("RGB", (64, 128), (120, 100, 90)).save(folder / "a.jpg")
    fits = tmp_path / "dancer"
    fits.mkdir()
    for k in range(6):
        body_pose = [0.0] * 69
        body_pose[3 * 15 + 2] = 0.25 * k  # the left shoulder (SMPL joint 16) raises the arm over the clip
        body_pose[3 * 3] = 0.3 * k  # the left knee (joint 4) bends
        fit = {"global_orient": [np.pi, 0.0, 0.0], "body_pose": body_pose}
        (fits / f"{k:06d}.json").write_text(json.dumps(fit))
    recipe = {
        "name": "cli-test",
        "version": "1.0.0",
        "source": {"format": "folder", "root": "images"},
        "generator": {"weights": "none"},
        "poses": {"source": "bank.npz"},
        "images_per_pid": 2,
        "max_attempts_per_image": 1,
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_posebank_build_gallery_and_report(project: Path):
    result = _invoke("posebank", "build", "--format", "fits", str(project / "dancer"), "--out", str(project / "bank.npz"))
    summary = json.loads(result.stdout)
    ids = list(np.load(project / "bank.npz")["ids"])
    # Six frames plus their mirrors, less the near-duplicates (the rest pose is its own mirror).
    assert summary["poses"] == len(ids) and 4 <= len(ids) < 12 and any(i.endswith("-mirror") for i in ids)
    assert json.loads(_invoke("posebank", "info", str(project / "bank.npz")).stdout)["poses"] == summary["poses"]

    # The plan's conditions: 2 identities x 2 images x 1 attempt.
    sheet = project / "sheet.png"
    _invoke("gallery", str(project / "recipe.yaml"), "-j", "1", "--contact-sheet", str(sheet))
    cached = sorted((project / "cache" / "conditions").rglob("*.npz"))
    assert len(cached) == 4
    with Image.open(sheet) as image:
        assert image.size[0] > 3 * 96 and np.asarray(image).std() > 10
    stamps = [p.stat().st_mtime_ns for p in cached]
    _invoke("gallery", str(project / "recipe.yaml"), "-j", "1")
    assert [p.stat().st_mtime_ns for p in cached] == stamps  # rendered once

    out = project / "coverage"
    result = _invoke("report", str(project / "recipe.yaml"), "--count", "300", "-o", str(out))
    assert "viewpoint coverage entropy" in result.stdout
    report = json.loads((out / "coverage.json").read_text())
    assert report["samples"] == 300 and 0.9 < report["viewpoint_entropy"] <= 1.0
    assert (out / "viewpoints.png").is_file() and (out / "poses.png").is_file()


def test_gallery_reports_a_missing_bank(project: Path):
    result = runner.invoke(app, ["gallery", str(project / "recipe.yaml"), "--count", "2"])
    assert result.exit_code == 2 and "bank.npz" in result.output


def test_report_writes_beside_the_release_not_into_the_working_folder(project: Path, tmp_path_factory, monkeypatch):
    _invoke("posebank", "build", "--format", "fits", str(project / "dancer"), "--out", str(project / "bank.npz"))
    elsewhere = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(elsewhere)
    result = _invoke("report", str(project / "recipe.yaml"), "--count", "40")
    assert list(elsewhere.iterdir()) == []
    out = project / "releases" / "cli-test" / "coverage" / "1.0.0"
    report = json.loads((out / "coverage.json").read_text())
    assert (out / "poses.png").is_file() and report["pose_plot"] == str(out / "poses.png")
    assert sum(report["pose_tags"].values()) == 40 and str(out) in result.stdout
    # The same measure as a card's, on what it counts: the card's counts accepted samples.
    assert "coverage entropy of the 40 planned conditions" in result.stdout and "accepted samples" in result.stdout


def test_report_draws_the_planned_body_panel_beside_the_release(project: Path, tmp_path_factory, monkeypatch):
    """Before a build: each planned identity's body shape, as the shape stage answers for it (here
    the plain grey crops hold nobody, so each identity falls back to its seeded population draw)."""
    from posedive.conditions.shapes import load_identity_shapes
    from posedive.recipe import load_recipe
    from posedive.sources import read_source

    _invoke("posebank", "build", "--format", "fits", str(project / "dancer"), "--out", str(project / "bank.npz"))
    elsewhere = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(elsewhere)
    _invoke("report", str(project / "recipe.yaml"))
    assert list(elsewhere.iterdir()) == []
    out = project / "releases" / "cli-test" / "coverage" / "1.0.0"
    report = json.loads((out / "coverage.json").read_text())
    assert report["body_plot"] == str(out / "bodies.png") and (out / "bodies.png").is_file()
    recipe = load_recipe(project / "recipe.yaml")
    train = read_source(recipe.source, recipe.base_dir).train_by_pid()
    shapes = load_identity_shapes(recipe)
    panel = report["bodies"]
    assert [i["pid"] for i in panel["identities"]] == sorted(train) and panel["paired"] == sorted(train)
    for identity in panel["identities"]:
        expected = shapes.shape(identity["pid"], [r.path for r in train[identity["pid"]]])
        assert panel["labels"] == expected.labels
        assert identity["source"] == expected.source and identity["values"] == pytest.approx(expected.values)
    shapes.close()
    _invoke("report", str(project / "recipe.yaml"), "--no-bodies", "-o", str(project / "plain"))
    assert not (project / "plain" / "bodies.png").exists()
    assert json.loads((project / "plain" / "coverage.json").read_text())["bodies"] is None
