"""One builder per shard of a release in an object store: the lock and the claims are objects beside
the release (moto's S3 server), so two drivers with their own recipe folders (two machines) see each
other; claims of builds that are gone are taken over with a message."""

import datetime as dt
import json
import logging
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from doubles import double_stages
from frame_helpers import frame_recipe, refuse_the_running_part_then_build_the_other
from s3_server import BUCKET, assert_same_files, remote_fs

from posedive import paths
from posedive.builder import build_release
from posedive.errors import LockError

TESTS = Path(__file__).parent

BUILD_PART = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from fsspec.config import conf
    conf["s3"] = {s3!r}
    from doubles import double_stages
    from frame_helpers import frame_recipe, refuse_the_running_part_then_build_the_other
    from posedive.builder import build_release
    recipe = frame_recipe(Path({folder!r}), output={{"dir": {url!r}}})
    report = build_release(recipe, stages=double_stages(delay_s={delay}), part={part!r}, show_progress=False)
    print("FINISHED" if report.manifest is not None else "BUILT", report.built_shards)
""")


@pytest.fixture(scope="module")
def local_release(tmp_path_factory):
    recipe = frame_recipe(tmp_path_factory.mktemp("local"))
    build_release(recipe, stages=double_stages(), show_progress=False)
    return recipe


def remote_recipe(folder: Path, prefix: str):
    folder.mkdir(parents=True, exist_ok=True)
    return frame_recipe(folder, output={"dir": f"s3://{BUCKET}/{prefix}"})


def start_driver(folder: Path, prefix: str, part, delay: float) -> subprocess.Popen:
    from fsspec.config import conf

    folder.mkdir(parents=True, exist_ok=True)
    script = BUILD_PART.format(tests=str(TESTS), s3=conf["s3"], folder=str(folder), url=f"s3://{BUCKET}/{prefix}",
                               delay=delay, part=part)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def claim_keys(url: str) -> list[str]:
    fs = remote_fs()
    fs.invalidate_cache()
    return fs.glob(f"{url}/{paths.CLAIMS_DIR}/*.json")


def put_claim(url: str, name: str, *, pid: int, host: str, age_s: float, part=None, shards=(0, 1, 2, 3)) -> None:
    stamp = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=age_s)).isoformat(timespec="milliseconds")
    record = {"format_version": 1, "pid": pid, "host": host, "part": part, "shards": list(shards),
              "started": stamp, "renewed": stamp, "ttl_s": 120.0}
    remote_fs().pipe_file(f"{url}/{paths.CLAIMS_DIR}/{name}", json.dumps(record).encode())


def test_two_drivers_of_one_s3_release_refuse_the_same_part_and_build_two_parts_at_once(
        s3_endpoint, local_release, tmp_path):
    first = start_driver(tmp_path / "machine-a", "two-drivers", (1, 2), delay=0.5)
    second = remote_recipe(tmp_path / "machine-b", "two-drivers")  # its own recipe folder: another machine
    url = second.release_location
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None and not claim_keys(url):
            time.sleep(0.1)
        assert claim_keys(url), "the first driver never claimed its shards: " + first.communicate()[1][-2000:]
    except BaseException:
        first.kill()
        raise
    refuse_the_running_part_then_build_the_other(
        first, lambda part: build_release(second, stages=double_stages(), part=part, show_progress=False))
    assert_same_files(local_release.release_dir, url)
    assert claim_keys(url) == []
    assert not remote_fs().exists(f"{url}/{paths.BUILD_LOCK}")


def test_a_renewed_claim_from_another_machine_is_refused_naming_it(s3_endpoint, tmp_path):
    recipe = remote_recipe(tmp_path, "other-machine")
    url = recipe.release_location
    put_claim(url, "other-node-4242-abcd.json", pid=4242, host="other-node", age_s=5, part="1/2", shards=(0, 2))
    with pytest.raises(LockError, match="being built by pid 4242 on other-node"):
        build_release(recipe, stages=double_stages(), show_progress=False)
    assert len(claim_keys(url)) == 1


def test_claims_and_a_lock_of_builds_that_are_gone_are_taken_over_with_a_message(
        s3_endpoint, local_release, tmp_path, caplog):
    recipe = remote_recipe(tmp_path, "stale")
    url = recipe.release_location
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    put_claim(url, "expired.json", pid=4242, host="other-node", age_s=600)
    put_claim(url, "dead.json", pid=int(dead.stdout), host=socket.gethostname(), age_s=1)
    taken = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=600)).isoformat()
    remote_fs().pipe_file(f"{url}/{paths.BUILD_LOCK}",
                          json.dumps({"pid": 4243, "host": "other-node", "taken": taken, "token": "x"}).encode())
    with caplog.at_level(logging.WARNING, logger="posedive.builder.store_claims"):
        report = build_release(recipe, stages=double_stages(), show_progress=False)
    assert report.manifest is not None
    messages = caplog.messages
    assert any("taking over the lock of pid 4243 on other-node" in m and "held for" in m for m in messages), messages
    assert any("taking over the claim of pid 4242 on other-node" in m and "not renewed for" in m for m in messages)
    assert any(f"taking over the claim of pid {int(dead.stdout)}" in m and "no longer running" in m for m in messages)
    assert_same_files(local_release.release_dir, url)
    assert claim_keys(url) == []


def test_a_running_builds_claim_is_renewed_so_it_never_looks_stale(s3_endpoint, tmp_path):
    from posedive.builder.store_claims import claim_store_shards
    from posedive.storage import open_store

    store = open_store(f"s3://{BUCKET}/renewed/frame-test/1.0.0")
    ttl_s = 1.0
    with claim_store_shards(store, [0, 1], part="1/2", ttl_s=ttl_s):
        time.sleep(3 * ttl_s)  # three lifetimes of an unrenewed claim
        with pytest.raises(LockError, match=r"shards \[1\] of this release are being built by pid"):
            claim_store_shards(store, [1, 2])
    with claim_store_shards(store, [1, 2]) as later:  # given back on exit
        assert later.alone


def test_without_exclusive_create_the_lock_is_written_then_read_back(monkeypatch):
    from posedive.builder import store_claims
    from posedive.storage import open_store

    store = open_store("memory://no-exclusive-create/frame-test/1.0.0")
    real_open = store.fs.open

    def open_without_x(path, mode="rb", **kwargs):
        if "x" in mode:
            raise ValueError(f"mode {mode!r} not supported")
        return real_open(path, mode, **kwargs)

    monkeypatch.setattr(store.fs, "open", open_without_x)
    monkeypatch.setattr(store_claims, "SETTLE_S", 0.01)
    assert store_claims._create_exclusive(store, paths.BUILD_LOCK, b"first")
    assert not store_claims._create_exclusive(store, paths.BUILD_LOCK, b"second")
    assert store.read_bytes(paths.BUILD_LOCK) == b"first"
