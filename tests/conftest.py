import sys
from pathlib import Path

import pytest

# Test helpers (layouts.py, doubles.py) are imported as plain modules.
sys.path.insert(0, str(Path(__file__).parent))


# Module-scoped fixtures of the pose-estimation tests (each test module gets its own instance).
@pytest.fixture(scope="module")
def estimator():
    from posedive.pose import load_pose_estimator

    with load_pose_estimator("blazepose") as estimator:
        yield estimator


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """Normal maps of the anny body from 12 azimuths (``pose_images.rendered_bodies``)."""
    from pose_images import rendered_bodies, skip_without_system_libraries

    return skip_without_system_libraries(rendered_bodies, str(tmp_path_factory.getbasetemp() / "filter-renders"))


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server; fsspec's configuration for ``s3`` points at it (what users set through
    ``FSSPEC_S3_ENDPOINT_URL`` and friends). One per test run: moto's servers in one process share
    their buckets, so a second server would find the first one's bucket (each test writes under a
    prefix of its own)."""
    from fsspec.config import conf

    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    from s3_server import BUCKET, free_port

    port = free_port()
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
