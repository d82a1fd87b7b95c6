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


def test_a_chunked_build_on_s3_keeps_a_finished_chunk_and_gives_the_local_bytes(s3_endpoint, tmp_path):
    """A chunk finished in S3's build state (as a killed build leaves it) is kept, not generated again;
    the shards assembled from the chunks on S3 equal a local chunked build, and no chunk is left."""
    from doubles import SeedRecordingGenerator

    from posedive.builder.engine import ShardWorker, chunk_store
    from posedive.builder.shard_job import BuildContext, ShardWork
    from posedive.plan import make_plan
    from posedive.sources import read_source

    chunked = {"units_per_chunk": 2}
    local = frame_recipe(tmp_path / "local", output=chunked)
    build_release(local, stages=double_stages(), show_progress=False)
    recipe = frame_recipe(tmp_path / "s3", output={**chunked, "dir": f"s3://{BUCKET}/chunked"})
    source = read_source(recipe.source, recipe.base_dir)
    plan = make_plan(recipe, source, double_stages().conditions.pose_ids())
    chunks = chunk_store(recipe, plan)
    chunks.store.write_text(paths.RECIPE_HASH_MARKER, recipe.hash + "\n")  # a build was started here
    (first,) = plan.shard_chunks(0)[:1]
    ShardWorker(BuildContext(recipe=recipe, source=source, stages=double_stages(), plan_hash=plan.hash),
                chunks)(ShardWork(shard=0, units=first, chunk=0, chunks=2), lambda event: None)

    stages = double_stages()
    stages.generator = SeedRecordingGenerator()
    report = build_release(recipe, stages=stages, show_progress=False)
    assert report.manifest is not None
    assert not {attempt.seed for unit in first for attempt in unit.attempts} & set(stages.generator.seeds)
    assert_same_files(local.release_dir, recipe.release_location)
    assert remote_fs().find(f"{recipe.release_location}/{paths.CHUNKS_DIR}") == []
