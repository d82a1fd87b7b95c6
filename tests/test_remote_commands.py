"""Commands on a release at an S3 URL (moto's server) give what they give on the same release built
in a local folder: info, stats, export, Re-ID training and push; a URL that is no release, missing
credentials and an endpoint that cannot be reached are named with a hint."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from doubles import double_stages
from frame_helpers import frame_recipe
from s3_server import BUCKET, remote_fs
from typer.testing import CliRunner

from posedive import paths
from posedive.analysis.images import load_images
from posedive.analysis.inputs import resolve_input
from posedive.builder import build_release
from posedive.cli import app
from posedive.errors import PathNotFound, ReleaseError, StorageAccessError
from posedive.reid.data import read_market_layout, with_release
from posedive.release import Release

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def twins(s3_endpoint, tmp_path_factory):
    """``(source_root, local release folder, URL)``: one recipe built into a folder and into S3."""
    root = tmp_path_factory.mktemp("twins")
    local = frame_recipe(root)
    build_release(local, stages=double_stages(), show_progress=False)
    remote = frame_recipe(root, output={"dir": f"s3://{BUCKET}/commands"})
    build_release(remote, stages=double_stages(), show_progress=False)
    return root / "market", local.release_dir, remote.release_location


def tree(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_info_verifies_and_stats_reads_the_images_of_an_s3_release(twins, tmp_path):
    _, local, url = twins
    runner = CliRunner()
    info = runner.invoke(app, ["info", url, "--verify"])
    assert info.exit_code == 0 and "every file matches the manifest" in info.output, info.output
    remote_items, local_items = resolve_input(url), resolve_input(local)
    assert remote_items.kind == "release" and len(remote_items.items) == Release.open(local).manifest.samples
    assert ([(i.key, i.camera, i.requested_azimuth_deg) for i in remote_items.items]
            == [(i.key, i.camera, i.requested_azimuth_deg) for i in local_items.items])
    assert load_images(remote_items.items) == load_images(local_items.items)
    reports = {}
    for label, where in (("local", str(local)), ("remote", url)):
        out = tmp_path / label
        result = runner.invoke(app, ["stats", where, "--out", str(out), "--workers", "1", "--no-cache",
                                     "--orientation", "landmarks"])
        assert result.exit_code == 0, result.output
        report = json.loads((out / paths.STATS_REPORT).read_text())
        (entry,) = report["inputs"]
        assert entry.pop("location") == where
        reports[label] = report
    assert reports["remote"] == reports["local"]
    assert reports["remote"]["inputs"][0]["name"] == "frame-test 1.0.0"


def test_export_of_an_s3_release_writes_the_files_of_a_local_export(twins, tmp_path):
    source, local, url = twins
    runner = CliRunner()
    for label, where in (("local", str(local)), ("remote", url)):
        result = runner.invoke(app, ["export", where, "--format", "market1501", "--source-root", str(source),
                                     "--out", str(tmp_path / label), "--no-progress"])
        assert result.exit_code == 0, result.output
    exported = tree(tmp_path / "remote")
    assert exported == tree(tmp_path / "local")
    assert sum(name.startswith("bounding_box_train/") and "s0_" in name for name in exported) == \
        Release.open(local).manifest.samples


def test_reid_training_with_an_s3_release_equals_training_with_its_local_copy(twins, tmp_path):
    import torch

    source, local, url = twins
    data = read_market_layout(source)
    assert with_release(data, url).train == with_release(data, local).train
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "epochs: 2\nmax_steps_per_epoch: 2\nbatch_p: 3\nbatch_k: 2\nwarmup_epochs: 1\nheight: 32\nwidth: 16\n"
        "pad: 2\nnum_workers: 0\neval_batch_size: 16\ndevice: cpu\n"
        "resnet_config: {embedding_size: 8, hidden_sizes: [8, 16], depths: [1, 1], layer_type: basic}\n"
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        comparisons = {}
        for label, where in (("local", str(local)), ("remote", url)):
            out = tmp_path / label
            result = CliRunner().invoke(app, ["reid", "train", "--source-root", str(source), "--release", where,
                                              "--no-baseline", "--out", str(out), "--config", str(config),
                                              "--random-init", "--no-progress"])
            assert result.exit_code == 0, result.output
            comparisons[label] = json.loads((out / "comparison.json").read_text())
    finally:
        torch.set_num_threads(before)
    assert comparisons["remote"] == comparisons["local"] and "+posedive" in comparisons["remote"]


# ---------------------------------------------------------------------------------------------- push
def test_push_of_an_s3_release_gives_the_repo_a_local_push_gives(twins, tmp_path):
    from fsspec.config import conf
    from hub_server import HubServer, client_env

    _, local, url = twins
    token, user = "hf_posedive_remote_token_9a2c", "posedive-lab"
    server = HubServer(tokens={token: user}).start()
    try:
        env = client_env(server.url, tmp_path / "home", token, extra_paths=(str(REPO_ROOT),))
        env.update(FSSPEC_S3=json.dumps(conf["s3"]), POSEDIVE_CACHE_DIR=str(tmp_path / "cache"))
        pushes = {}
        for repo, where in ((f"{user}/from-folder", str(local)), (f"{user}/from-s3", url), (f"{user}/from-s3", url)):
            pushed = subprocess.run([sys.executable, "-m", "posedive.cli", "push", where, "--repo", repo], env=env,
                                    cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
            assert pushed.returncode == 0, pushed.stderr[-3000:]
            pushes.setdefault(repo, []).append(pushed.stderr)
            if where == url and len(pushes[repo]) == 1:
                staged = {path: path.stat().st_mtime_ns for path in (tmp_path / "cache").rglob("*") if path.is_file()}
        trees = {}
        for repo in pushes:
            files = server.tree(repo, "v1.0.0")
            trees[repo] = {rel: hashlib.sha256(server.read(repo, "v1.0.0", rel)).hexdigest() for rel in files}
        # The repo holds exactly the remote release's files; they are the local twin's, but for the recipe's
        # output.dir (a folder, a URL) and so the manifest's hash of the recipe.
        from_s3, from_folder = trees[f"{user}/from-s3"], trees[f"{user}/from-folder"]
        assert from_s3 == {".gitattributes": from_folder[".gitattributes"],
                           **{rel: entry.sha256 for rel, entry in Release.open(url).files().items()}}
        differing = {rel for rel in from_folder if from_s3.get(rel) != from_folder[rel]}
        assert differing == {paths.RECIPE, paths.MANIFEST}
        assert "0 uploaded" in pushes[f"{user}/from-s3"][1]
    finally:
        server.stop()
    # The staged copy lies in posedive's cache, named after the URL, and was reused by the second push.
    folder = tmp_path / "cache" / "remote-releases" / "s3" / BUCKET / "commands" / "frame-test" / "1.0.0"
    assert tree(folder) == {rel: remote_fs().cat_file(f"{url}/{rel}") for rel in Release.open(url).files()}
    assert {path: path.stat().st_mtime_ns for path in staged} == staged
    # The push is recorded beside the remote manifest, as beside a local one.
    record = json.loads(remote_fs().cat_file(f"{url}/{paths.HUB_RECORD}"))
    assert [(p["repo_id"], p["tag"]) for p in record["pushes"]] == [(f"{user}/from-s3", "v1.0.0")]
    assert Release.open(url).verify() == []


# -------------------------------------------------------------------------------------------- errors
def test_a_url_that_is_not_a_release_is_named(twins):
    remote_fs().pipe_file(f"s3://{BUCKET}/unfinished/frame-test/1.0.0/{paths.RECIPE_HASH_MARKER}", b"x\n")
    for where, message in ((f"s3://{BUCKET}/nothing-here", "holds no files; not a finished posedive release"),
                           (f"s3://{BUCKET}/unfinished/frame-test/1.0.0", f"holds no {paths.MANIFEST}")):
        with pytest.raises(ReleaseError, match=message) as refused:
            Release.open(where)
        assert where in str(refused.value) and "<output.dir>/<name>/<version>" in refused.value.hint
    with pytest.raises(PathNotFound, match="bucket") as missing:
        Release.open("s3://no-such-bucket-here/releases/x/1.0.0")
    assert "s3://no-such-bucket-here/releases/x/1.0.0" in str(missing.value)
    result = CliRunner().invoke(app, ["export", f"s3://{BUCKET}/nothing-here", "--format", "market1501",
                                      "--source-root", "x", "--out", "y"])
    assert result.exit_code == 2 and f"s3://{BUCKET}/nothing-here" in result.output and "hint:" in result.output


def test_missing_credentials_and_an_unreachable_endpoint_are_named_with_a_hint(twins, monkeypatch, tmp_path):
    from fsspec.config import conf

    _, _, url = twins
    saved = dict(conf["s3"])
    for name in [n for n in os.environ if n.startswith("AWS_") and n != "AWS_CA_BUNDLE"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    try:
        conf["s3"] = {k: v for k, v in saved.items() if k not in ("key", "secret")}
        with pytest.raises(StorageAccessError, match="no credentials") as no_key:
            Release.open(url)
        assert url in str(no_key.value) and "FSSPEC_S3_KEY" in no_key.value.hint
        conf["s3"] = {**saved, "endpoint_url": "http://127.0.0.1:9", "config_kwargs": {"retries": {"max_attempts": 1}}}
        result = CliRunner().invoke(app, ["info", url])
        assert result.exit_code == 2, result.output
        assert "cannot be reached" in result.output and url in result.output
        assert "FSSPEC_S3_ENDPOINT_URL" in result.output
        build = frame_recipe(tmp_path, output={"dir": f"s3://{BUCKET}/unreachable"})
        with pytest.raises(StorageAccessError, match="cannot be reached") as unreachable:
            build_release(build, stages=double_stages(), show_progress=False)
        assert build.release_location in str(unreachable.value)
    finally:
        conf["s3"] = saved
