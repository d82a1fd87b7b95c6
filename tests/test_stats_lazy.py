"""``posedive stats`` reads images lazily: resolving an input reads no image, ``analyse_items`` holds
one chunk of image bytes at a time; and finalising a release counts and hashes a shard in one read."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from layouts import make_market
from PIL import Image

from posedive.analysis import images as analysis
from posedive.analysis.images import ImageItem, TarMember, analyse_items, load_images
from posedive.analysis.inputs import release_items, resolve_input
from posedive.files import sha256_file
from posedive.pose.cache import PoseCache
from posedive.shards import iter_shard_members, scan_shard, write_shard


def _encoded(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (24, 48)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def release(tmp_path) -> tuple[Path, list[tuple[str, bytes]]]:
    """A release folder of two shards, written as the builder writes them: 11 images (one png, the
    image of ``p0000`` repeated by ``p0009``, across chunks), one sample without an image, and an
    unfinished build's shard that must be skipped. Returns the folder and (key, bytes) in order."""
    folder = tmp_path / "releases" / "demo" / "1.0.0"
    expected: list[tuple[str, bytes]] = []
    shards: list[list[dict]] = [[], []]
    for i in range(11):
        image = _encoded(0) if i == 9 else _encoded(i, "PNG" if i == 4 else "JPEG")
        meta = {"source": {"camid": 1 + i % 2, "pid": i}, "camera": {"azimuth_deg": 30.0 * i}}
        sample = {"__key__": f"p{i:04d}_s0", "png" if i == 4 else "jpg": image, "json": json.dumps(meta).encode()}
        shards[i // 6].append(sample)
        expected.append((sample["__key__"], image))
    shards[1].append({"__key__": "noimage_s0", "json": b"{}"})
    for shard, samples in enumerate(shards):
        write_shard(folder, shard, samples)
    write_shard(folder / ".build", 0, [{"__key__": "unfinished", "jpg": _encoded(99)}])
    return folder, expected


def test_resolving_a_release_reads_no_image_bytes(release, monkeypatch):
    import webdataset as wds

    folder, expected = release
    extracted: list[str] = []
    real_extractfile = tarfile.TarFile.extractfile

    def spy(self, member):
        extracted.append(member if isinstance(member, str) else member.name)
        return real_extractfile(self, member)

    monkeypatch.setattr(tarfile.TarFile, "extractfile", spy)
    resolved = resolve_input(folder)
    assert resolved.kind == "release"
    items = resolved.items
    assert extracted and all(name.endswith(".json") for name in extracted)  # provenance only
    assert all(item.data is None and isinstance(item.location, TarMember) for item in items)
    assert [item.key for item in items] == [key for key, _ in expected]
    assert [item.camera for item in items] == [f"c{1 + i % 2}" for i in range(11)]
    assert [item.requested_azimuth_deg for item in items] == [30.0 * i for i in range(11)]
    monkeypatch.undo()

    # The same samples, in the same order, as webdataset reads them; the bytes read back on demand.
    shards = sorted(str(p) for p in (folder / "data").glob("*.tar"))
    samples = [s for s in wds.WebDataset(shards, shardshuffle=False, empty_check=False) if "json" in s]
    with_images = [s for s in samples if s.get("jpg", s.get("png")) is not None]
    assert [s["__key__"] for s in with_images] == [item.key for item in items]
    assert load_images(items) == [s.get("jpg", s.get("png")) for s in with_images] == [data for _, data in expected]


def test_resolving_a_source_reads_no_image_bytes(tmp_path):
    market = make_market(tmp_path / "market")
    items = resolve_input(market).items
    assert items and all(item.data is None and isinstance(item.location, Path) for item in items)
    assert load_images(items) == [Path(item.location).read_bytes() for item in items]


def test_an_item_holds_bytes_or_a_location():
    with pytest.raises(ValueError, match="either data or a location"):
        ImageItem(key="k", camera="c1")
    with pytest.raises(ValueError, match="either data or a location"):
        ImageItem(key="k", camera="c1", data=b"x", location=Path("x.jpg"))


class _Tracked(bytes):
    """Image bytes that count how many of them are alive."""

    live = 0

    def __new__(cls, data: bytes) -> "_Tracked":
        obj = super().__new__(cls, data)
        _Tracked.live += 1
        return obj

    def __del__(self) -> None:
        _Tracked.live -= 1


class _FakeEstimator:
    """Stands in for BlazePose: finds nobody, records what it saw and how many image bytes were alive."""

    seen: list[tuple[int, int]] = []  # (image height, bytes alive) per image analysed

    settings_for = staticmethod(lambda **options: {"estimator": "fake", **options})

    def __init__(self, **options) -> None:
        pass

    def __enter__(self) -> "_FakeEstimator":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def analyse(self, images):
        _FakeEstimator.seen += [(image.shape[0], _Tracked.live) for image in images]
        return [SimpleNamespace(person_found=False) for _ in images]


@pytest.fixture
def fake_estimator(monkeypatch):
    from posedive.pose import blazepose

    monkeypatch.setattr(blazepose, "BlazePoseEstimator", _FakeEstimator)
    _FakeEstimator.seen = []
    return _FakeEstimator


def test_analyse_items_holds_one_chunk_of_bytes_at_a_time(release, fake_estimator, monkeypatch, tmp_path):
    folder, expected = release
    items = release_items(folder)
    assert len(items) == 11
    loads: list[tuple[list[str], int]] = []  # (keys, bytes alive before the load) per load
    real_load = analysis.load_images

    def tracked_load(chunk):
        loads.append(([item.key for item in chunk], _Tracked.live))
        return [_Tracked(data) for data in real_load(chunk)]

    monkeypatch.setattr(analysis, "load_images", tracked_load)
    with PoseCache(tmp_path / "cache") as cache:
        records = analyse_items(items, cache=cache, chunk_size=3, orientation="landmarks")
        assert [keys for keys, _ in loads] == [[item.key for item in items[i : i + 3]] for i in range(0, 11, 3)]
        assert all(alive == 0 for _, alive in loads)  # the previous chunk was let go before this read
        # Each chunk is analysed while only its own bytes are alive; p0009 repeats p0000: analysed once.
        assert len(fake_estimator.seen) == 10
        assert all(alive <= 3 for _, alive in fake_estimator.seen)
        assert _Tracked.live == 0
        assert len(records) == 11 and records[9] == records[0]
        assert all(not r.person_found and (r.width, r.height) == (24, 48) for r in records)

        # Cached: read again a chunk at a time, nothing analysed, the same answers.
        loads.clear()
        fake_estimator.seen = []
        assert analyse_items(items, cache=cache, chunk_size=3, orientation="landmarks") == records
        assert len(loads) == 4 and all(alive == 0 for _, alive in loads) and fake_estimator.seen == []

    # The same records as for items that hold their bytes.
    held = [ImageItem(key=item.key, camera=item.camera, data=data) for item, data in zip(items, real_load(items))]
    assert analyse_items(held, chunk_size=3, orientation="landmarks") == records


def test_scan_shard_counts_and_hashes_in_one_read(tmp_path, monkeypatch):
    samples = [{"__key__": f"s{i:03d}", "jpg": _encoded(i), "json": json.dumps({"i": i}).encode()} for i in range(7)]
    samples.append({"__key__": "extra", "txt": b"no provenance"})
    shard = write_shard(tmp_path, 0, samples)
    expected_count = sum(1 for _, field, _ in iter_shard_members(shard) if field == "json")
    expected_hash = sha256_file(shard)

    opened: list[Path] = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        opened.append(Path(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    scan = scan_shard(shard, chunk=1000)  # a small buffer: headers straddle reads
    monkeypatch.undo()
    assert opened == [shard]
    assert scan.samples == expected_count == 7
    assert scan.sha256 == expected_hash
    assert scan.bytes == shard.stat().st_size
    empty = write_shard(tmp_path / "empty", 0, [])
    assert scan_shard(empty) == (0, sha256_file(empty), empty.stat().st_size)
