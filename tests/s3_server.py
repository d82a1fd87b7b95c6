"""An S3-compatible server for tests (moto's, on a free port) and the comparison of a remote release
with a local one. fsspec's configuration for ``s3`` is pointed at the server, as users point it at
theirs (``FSSPEC_S3_ENDPOINT_URL`` and friends); a release store takes that configuration along to
every worker it is sent to."""

import json
import socket

import pytest
import yaml

from posedive import paths
from posedive.release import Release

BUCKET = "posedive-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def remote_fs():
    from fsspec.config import conf

    s3fs = pytest.importorskip("s3fs")
    return s3fs.S3FileSystem(**conf["s3"], skip_instance_cache=True)


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
