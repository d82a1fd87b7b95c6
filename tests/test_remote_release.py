"""Releases written to remote storage: an S3-compatible server (moto's, started here on a free port)
receives, from the workers, the same bytes a local build writes; finishing and verifying read it."""

import json
import socket

import pytest
import yaml
from doubles import double_stages
from frame_helpers import frame_recipe

from posedive import paths
from posedive.builder import build_release
from posedive.release import Release

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")

BUCKET = "posedive-test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server; fsspec's configuration for ``s3`` points at it (what users set through
    ``FSSPEC_S3_ENDPOINT_URL`` and friends)."""
    from fsspec.config import conf

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = conf.get("s3")
    conf["s3"] = {"key": "testing", "secret": "testing", "endpoint_url": endpoint,
                  "client_kwargs": {"region_name": "eu-west-1"}}
    fs = s3fs.S3FileSystem(**conf["s3"], skip_instance_cache=True)
    fs.mkdir(BUCKET)
    try:
        yield endpoint
    finally:
        if saved is None:
            conf.pop("s3", None)
        else:
            conf["s3"] = saved
        server.stop()


def remote_fs():
    from fsspec.config import conf

    return s3fs.S3FileSystem(**conf["s3"], skip_instance_cache=True)


@pytest.fixture(scope="module")
def local_release(tmp_path_factory):
    recipe = frame_recipe(tmp_path_factory.mktemp("local"))
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    return recipe, report


def _without_output_dir(recipe_text: bytes) -> dict:
    data = yaml.safe_load(recipe_text)
    data["output"].pop("dir")
    return data


def assert_same_files(local_root, url: str) -> None:
    """Every file of the local release (the manifest and all it lists) has the same bytes remotely,
    and the remote location holds nothing else (the local build's own state aside). The copy of the
    recipe differs in ``output.dir`` alone (a local folder, an S3 URL), and so its hash in the manifest."""
    fs = remote_fs()
    release = Release.open(local_root)
    relpaths = sorted(release.files())
    for relpath in relpaths:
        remote, local = fs.cat_file(f"{url}/{relpath}"), (local_root / relpath).read_bytes()
        if relpath == paths.RECIPE:
            assert _without_output_dir(remote) == _without_output_dir(local)
        elif relpath == paths.MANIFEST:
            remote_manifest, local_manifest = json.loads(remote), json.loads(local)
            for manifest in (remote_manifest, local_manifest):
                manifest["files"].pop(paths.RECIPE)
            assert remote_manifest == local_manifest
        else:
            assert remote == local, relpath
    remote = sorted(name.split(url.removeprefix("s3://") + "/", 1)[1] for name in fs.find(url))
    assert [r for r in remote if not paths.is_local_state(r)] == relpaths


def test_a_build_into_s3_writes_the_bytes_of_a_local_build_and_verifies(s3_endpoint, local_release, tmp_path):
    local, _ = local_release
    recipe = frame_recipe(tmp_path, output={"dir": f"s3://{BUCKET}/local-engine"})
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    url = recipe.release_location
    assert url == f"s3://{BUCKET}/local-engine/frame-test/1.0.0" and report.manifest is not None
    assert_same_files(local.release_dir, url)
    assert Release.open(url).verify() == []
    again = build_release(recipe, stages=double_stages(), show_progress=False)
    assert again.already_complete


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
