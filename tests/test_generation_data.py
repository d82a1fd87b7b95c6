"""The training-pairs WebDataset format: write, read back, random access, and the errors it raises."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
from generation_tiny import make_pairs, one_torch_thread

from posedive.generation.data import PAIR_FIELDS, PairsIndex, PairWriter, TrainingPair, iter_pairs

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


def _pair(key: str = "p-0", size=(64, 32)) -> TrainingPair:
    rng = np.random.default_rng(0)
    h, w = size
    return TrainingPair(
        key=key,
        reference=rng.integers(0, 256, (50, 20, 3), dtype=np.uint8),
        target=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        depth=rng.integers(0, 256, (h, w), dtype=np.uint8),
        normal=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        skeleton=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        pid="7",
        frames=[3, 90],
        provenance={"video": "vtest.avi"},
    )


def test_round_trip_and_members(tmp_path):
    shards = make_pairs(tmp_path, 5)
    assert [s.name for s in shards] == ["pairs-000000.tar", "pairs-000001.tar"]
    with tarfile.open(shards[0]) as tar:
        names = tar.getnames()
    assert names[: len(PAIR_FIELDS)] == [f"pair-000.{field}" for field in PAIR_FIELDS]
    pairs = list(iter_pairs(tmp_path))
    assert [p.key for p in pairs] == [f"pair-{i:03d}" for i in range(5)]
    index = PairsIndex(tmp_path)
    assert len(index) == 5
    for i in (4, 0, 2):
        got, expected = index[i], pairs[i]
        assert got.key == expected.key and got.pid == str(i) and got.frames == [0, 1]
        np.testing.assert_array_equal(got.depth, expected.depth)  # PNG maps are lossless
        np.testing.assert_array_equal(got.skeleton, expected.skeleton)
        assert got.target.shape == (64, 32, 3)


def test_lossless_maps_and_metadata(tmp_path):
    pair = _pair()
    with PairWriter(tmp_path) as writer:
        writer.write(pair)
    (back,) = iter_pairs(tmp_path / "pairs-000000.tar")
    for name in ("depth", "normal", "skeleton"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pair, name))
    assert back.reference.shape == (50, 20, 3)
    assert back.metadata == pair.metadata and back.metadata["format_version"] == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(key="a.b"), "no dots"),
        (dict(depth=np.zeros((10, 10), np.uint8)), "target's size"),
        (dict(normal=np.zeros((64, 32), np.uint8)), "normal must be a uint8 array with 3"),
        (dict(target=np.zeros((64, 32, 3), np.float32)), "target must be a uint8"),
    ],
)
def test_invalid_pairs_are_named(tmp_path, change, message):
    pair = _pair()
    for key, value in change.items():
        setattr(pair, key, value)
    with PairWriter(tmp_path) as writer, pytest.raises(ValueError, match=message):
        writer.write(pair)


def test_duplicate_keys_and_missing_members(tmp_path):
    with PairWriter(tmp_path) as writer:
        writer.write(_pair("a"))
        with pytest.raises(ValueError, match="written twice"):
            writer.write(_pair("a"))
    broken = tmp_path / "broken"
    broken.mkdir()
    with tarfile.open(tmp_path / "pairs-000000.tar") as src, tarfile.open(broken / "x.tar", "w") as dst:
        for member in src.getmembers():
            if not member.name.endswith(".normal.png"):
                dst.addfile(member, src.extractfile(member))
    with pytest.raises(ValueError, match="missing members"):
        list(iter_pairs(broken))
    with pytest.raises(FileNotFoundError):
        list(iter_pairs(tmp_path / "nowhere"))


def test_a_pairs_folder_without_shards_is_a_typed_error_with_the_command_that_writes_them(tmp_path):
    from posedive.errors import PathNotFound

    with pytest.raises(PathNotFound, match="no .tar shards") as refused:
        list(iter_pairs(tmp_path))
    assert "posedive pairs" in refused.value.hint
    with pytest.raises(PathNotFound, match="does not exist"):
        list(iter_pairs(tmp_path / "absent"))
