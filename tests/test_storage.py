"""Release locations: a shard written to any fsspec location has the bytes of a local one, and a file
appears under its own name only once complete (on object stores: temporary key, then copy)."""

import hashlib
import os
import uuid

import pytest

from posedive import paths
from posedive.files import TEMPORARY_MARK
from posedive.shards import write_shard, write_shard_to
from posedive.storage import is_url, open_store

SAMPLES = [{"__key__": f"s{index}", "jpg": os.urandom(5000), "json": b'{"k": 1}'} for index in range(3)]


def memory_store():
    return open_store(f"memory://posedive-{uuid.uuid4().hex}/release")


def test_a_shard_written_to_a_store_has_the_bytes_of_a_local_one(tmp_path):
    expected = write_shard(tmp_path / "local", 0, SAMPLES).read_bytes()
    for store in (memory_store(), open_store(tmp_path / "store")):
        written = write_shard_to(store, 0, SAMPLES)
        data = store.read_bytes(paths.shard_name(0))
        assert data == expected
        assert (written.sha256, written.bytes) == (hashlib.sha256(data).hexdigest(), len(data))
        assert store.listdir(paths.DATA_DIR) == [paths.shard_name(0).rsplit("/", 1)[1]]


def test_an_interrupted_write_leaves_only_its_temporary_key(tmp_path):
    store = memory_store()
    store.write_bytes("notes.txt.tmp-other", b"not ours: no pid")

    def cut_short(handle):
        handle.write(b"half a shard")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.write_with(paths.shard_name(1), cut_short)
    assert not store.is_file(paths.shard_name(1))
    temporary = f"{paths.shard_name(1)}{TEMPORARY_MARK}{os.getpid()}"
    assert store.is_file(temporary)
    assert store.remove_temporaries([paths.shard_name(1), "notes.txt"]) == [temporary]
    assert store.walk_files() == ["notes.txt.tmp-other"]


def test_a_store_sent_to_a_worker_opens_the_same_location():
    import pickle

    store = memory_store()
    store.write_text("a.txt", "x")
    copy = pickle.loads(pickle.dumps(store))
    assert copy.location == store.location and copy.read_bytes("a.txt") == b"x"


def test_local_paths_and_file_urls_are_local():
    assert not is_url("/data/releases") and not is_url("releases") and not is_url("file:///data")
    assert is_url("s3://bucket/releases") and is_url("memory://x")
