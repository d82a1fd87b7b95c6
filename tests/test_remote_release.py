"""Releases written to remote storage: an S3-compatible server (moto's, started here on a free port)
receives, from the workers, the same bytes a local build writes; finishing and verifying read it."""

import pytest
from doubles import double_stages
from frame_helpers import frame_recipe
from s3_server import BUCKET, assert_same_files, remote_fs

from posedive import paths
from posedive.builder import build_release
from posedive.release import Release


@pytest.fixture(scope="module")
def local_release(tmp_path_factory):
    recipe = frame_recipe(tmp_path_factory.mktemp("local"))
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    return recipe, report


def test_a_build_into_s3_writes_the_bytes_of_a_local_build_and_verifies(s3_endpoint, local_release, tmp_path):
    local, _ = local_release
    recipe = frame_recipe(tmp_path, output={"dir": f"s3://{BUCKET}/local-engine"})
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    url = recipe.release_location
    assert url == f"s3://{BUCKET}/local-engine/frame-test/1.0.0" and report.manifest is not None
    assert report.release_dir == url
    assert_same_files(local.release_dir, url)
    assert Release.open(url).verify() == []
    again = build_release(recipe, stages=double_stages(), show_progress=False)
    assert again.already_complete
    from typer.testing import CliRunner

    from posedive.cli import app

    result = CliRunner().invoke(app, ["info", url, "--verify"])
    assert result.exit_code == 0 and "every file matches the manifest" in result.output, result.output


def test_verify_on_s3_names_a_changed_and_an_unlisted_file(s3_endpoint, tmp_path):
    recipe = frame_recipe(tmp_path, output={"dir": f"s3://{BUCKET}/tampered"})
    build_release(recipe, stages=double_stages(), show_progress=False)
    url = recipe.release_location
    fs = remote_fs()
    fs.pipe_file(f"{url}/{paths.CARD}", b"changed")
    fs.pipe_file(f"{url}/stray.txt", b"x")
    problems = Release.open(url).verify()
    assert f"{paths.CARD}: content differs from the manifest" in problems
    assert any(problem.startswith("stray.txt: not listed") for problem in problems)


def test_parts_built_into_s3_finish_as_one_release(s3_endpoint, local_release, tmp_path):
    local, _ = local_release
    recipe = frame_recipe(tmp_path, output={"dir": f"s3://{BUCKET}/parts"})
    for index in (1, 2):
        report = build_release(recipe, stages=double_stages(), part=(index, 2), show_progress=False)
    assert report.manifest is not None
    assert_same_files(local.release_dir, recipe.release_location)


def test_a_rejected_shard_on_s3_is_moved_aside_and_rebuilt(s3_endpoint, local_release, tmp_path):
    local, _ = local_release
    recipe = frame_recipe(tmp_path, output={"dir": f"s3://{BUCKET}/resumed"})
    build_release(recipe, stages=double_stages(), part=(1, 2), show_progress=False)
    url = recipe.release_location
    fs = remote_fs()
    fs.pipe_file(f"{url}/{paths.shard_name(0)}", b"cut short")
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    assert [(r.shard, r.reason) for r in report.rejected_shards] == [(0, "unreadable")]
    assert fs.cat_file(f"{url}/{paths.rejected_shard_name(paths.shard_name(0), 'unreadable', 1)}") == b"cut short"
    assert_same_files(local.release_dir, url)
