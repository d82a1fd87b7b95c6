"""Source images are checked lazily, by the shard worker that loads them: a build plans from file names,
and an image that cannot be decoded is recorded (path and reason) in its shard's stats and gathered
into the manifest's ``unreadable`` list, the same however the build is split."""

import json

from doubles import double_stages
from frame_helpers import frame_recipe

from posedive import paths
from posedive.builder import build_release

BROKEN_PID = 11


def _break_identity(recipe) -> list[str]:
    root = recipe.resolve(recipe.source.root)
    broken = sorted((root / "bounding_box_train").glob(f"{BROKEN_PID:04d}_*.jpg"))
    for path in broken:
        path.write_bytes(b"not a jpeg")
    return [f"bounding_box_train/{path.name}" for path in broken]


def test_unreadable_images_are_found_by_the_workers_and_listed_in_the_manifest(tmp_path):
    recipe = frame_recipe(tmp_path)
    broken = _break_identity(recipe)
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    tried = sorted({a.reference for u in report.plan.units if u.pid == BROKEN_PID for a in u.attempts})
    assert tried and set(tried) <= set(broken)
    assert report.manifest.source.unreadable == tried
    assert BROKEN_PID in report.manifest.short_pids  # every attempt of that identity failed at its reference
    listed = {}
    for shard in range(report.plan.num_shards):
        stats = json.loads(paths.shard_stats_path(recipe.release_dir, shard).read_text())
        for entry in stats["unreadable"]:
            listed[entry["image"]] = entry["reason"]
    assert sorted(listed) == tried
    assert all(reason.startswith("UnidentifiedImageError") and str(tmp_path) not in reason
               for reason in listed.values())


def test_parts_find_the_same_unreadable_images_as_one_build(tmp_path):
    whole = frame_recipe(tmp_path / "whole")
    _break_identity(whole)
    build_release(whole, stages=double_stages(), show_progress=False)
    split = frame_recipe(tmp_path / "split")
    _break_identity(split)
    for index in (1, 2):
        report = build_release(split, stages=double_stages(), part=(index, 2), show_progress=False)
    assert report.manifest is not None
    for relpath in [paths.MANIFEST, *report.manifest.files]:
        if relpath != paths.RECIPE:
            assert (whole.release_dir / relpath).read_bytes() == (split.release_dir / relpath).read_bytes(), relpath
