"""Pose banks fitted from the user's own photographs, usable by a recipe."""

import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from posedive.cli import app
from posedive.conditions.posebank import load_pose_bank
from posedive.geometry.rotations import smpl_skeleton

CROPS = Path(__file__).parent / "fixtures" / "vtest_market" / "bounding_box_train"


def test_posebank_from_images_round_trips_and_plans(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    chosen = sorted(CROPS.glob("000[12]_*.jpg"))
    for path in chosen:
        shutil.copy(path, photos / path.name)
    out = tmp_path / "mine.npz"
    result = CliRunner().invoke(app, ["posebank", "build", "--from-images", str(photos), "--out", str(out),
                                      "--licence", "own photos", "--no-mirror", "--dedup", "0"])
    assert result.exit_code == 0, result.output
    bank = load_pose_bank(str(out))
    assert 0.8 * len(chosen) <= len(bank) <= len(chosen)
    assert set(bank.licence.tolist()) == {"own photos"}
    assert all(pose_id.startswith("photos-photos-") for pose_id in bank.ids.tolist())
    assert np.isfinite(bank.poses).all()
    # Walking people: upright bodies whose head is well above the pelvis in the bank's y-up frame.
    joints = smpl_skeleton(bank.poses.astype(np.float64))
    assert (joints[:, 15, 1] - joints[:, 0, 1] > 0.3).all()

    from posedive.plan import make_plan
    from posedive.recipe import parse_recipe
    from posedive.sources import read_source

    recipe = parse_recipe({"name": "own", "version": "1.0.0", "source": {"format": "folder", "root": "photos_by_id"},
                           "poses": {"source": str(out)}, "generator": {"weights": "x"}}, base_dir=tmp_path)
    shutil.copytree(photos, tmp_path / "photos_by_id" / "0001")
    plan = make_plan(recipe, read_source(recipe.source, recipe.base_dir), bank.ids.tolist())
    assert {a.pose_id for u in plan.units for a in u.attempts} <= set(bank.ids.tolist())
