"""Versioned file formats: every reader refuses a file of a newer format with the upgrade to install,
naming the file and both versions; files of older formats (or written before a format had a version)
still read; and file names are spelt only in ``posedive.paths``."""

from __future__ import annotations

import ast
import fcntl
import json
import os
from pathlib import Path

import numpy as np
import pytest

import posedive
from posedive import formats, paths
from posedive.errors import FormatError, LockError

PACKAGE_ROOT = Path(posedive.__file__).resolve().parent


def _bump(path: Path, key: str = "format_version", by: int = 1) -> int:
    """Rewrite the JSON file ``path`` stating a version ``by`` above its own; returns that version."""
    data = json.loads(path.read_text())
    data[key] = data.get(key, 1) + by
    path.write_text(json.dumps(data))
    return data[key]


def _release(tmp_path: Path):
    from posedive.release import Release

    (tmp_path / paths.MANIFEST).write_text(json.dumps({"format_version": formats.RELEASE.version + 1,
                                                       "a_field_of_the_future": True}))
    return tmp_path / paths.MANIFEST, formats.RELEASE.version + 1, lambda: Release.open(tmp_path)


def _hub_record(tmp_path: Path):
    from posedive.hub import HubRecord, read_hub_record

    path = tmp_path / paths.HUB_RECORD
    path.write_text(HubRecord(name="demo", version="1.0.0").model_dump_json())
    return path, _bump(path), lambda: read_hub_record(tmp_path)


def _split_folder(tmp_path: Path):
    from posedive.release.split_folder import read_split_report

    path = tmp_path / paths.SPLIT_REPORT
    path.write_text(json.dumps({"format_version": formats.SPLIT_FOLDER.version + 1}))
    return path, formats.SPLIT_FOLDER.version + 1, lambda: read_split_report(tmp_path)


def _generator_metadata(tmp_path: Path):
    from posedive.generation.checkpoint import GeneratorMetadata

    path = GeneratorMetadata(description="a test generator").save(tmp_path)
    return path, _bump(path), lambda: GeneratorMetadata.load(tmp_path)


def _condition_contract(tmp_path: Path):
    from posedive.generation.checkpoint import read_contract
    from posedive.generation.contract import POSEDIVE_CONTRACT

    path = tmp_path / paths.GUIDER_CONFIG
    path.parent.mkdir(parents=True)
    saved = POSEDIVE_CONTRACT.to_config()
    saved["version"] = formats.CONDITION_CONTRACT.version + 1
    path.write_text(json.dumps({"conditioning_channels": 7, "conditions": saved}))
    return path, saved["version"], lambda: read_contract(tmp_path)


def _pose_bank(tmp_path: Path):
    from posedive.conditions.posebank import PoseBank

    bank = PoseBank.from_arrays(np.zeros((2, 72)), ["a", "b"], ["s", "s"], ["walk", "walk"], [0, 1], ["x", "x"])
    path = bank.save(tmp_path / "bank.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["format"] = np.int32(formats.POSE_BANK.version + 1)
    np.savez(path.with_suffix(""), **arrays)
    return path, formats.POSE_BANK.version + 1, lambda: PoseBank.load(path)


def _training_pairs(tmp_path: Path):
    from generation_tiny import make_pairs

    from posedive.generation.data import iter_pairs

    (shard,) = make_pairs(tmp_path, 1)
    import tarfile

    with tarfile.open(shard) as tar:
        members = {info.name: tar.extractfile(info).read() for info in tar if info.isfile()}
    name = next(n for n in members if n.endswith(".json"))
    meta = json.loads(members[name])
    meta["format_version"] = formats.TRAINING_PAIRS.version + 1
    members[name] = json.dumps(meta).encode()
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        import io

        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return shard, meta["format_version"], lambda: list(iter_pairs(shard))


NEWER_FILES = {
    "release": _release,
    "Hub record": _hub_record,
    "split folder": _split_folder,
    "generator metadata": _generator_metadata,
    "condition contract": _condition_contract,
    "pose bank": _pose_bank,
    "training pairs": _training_pairs,
}


@pytest.mark.parametrize("kind", sorted(NEWER_FILES))
def test_a_file_of_a_newer_format_is_refused_naming_it_both_versions_and_the_upgrade(kind, tmp_path):
    path, version, read = NEWER_FILES[kind](tmp_path)
    with pytest.raises(FormatError) as refused:
        read()
    message = str(refused.value)
    assert str(path) in message and f"format {version}" in message and "newer" in message
    assert f"({posedive.__version__})" in message
    assert refused.value.hint is not None and formats.UPGRADE in refused.value.hint


def test_every_listed_format_is_checked_or_keyed():
    """Each format has a reader test here, but the renderer's (a cache key) and the statistics report's (written,
    never read back)."""
    checked = {kind for kind in NEWER_FILES} | {"renderer", "build claim", "statistics report"}
    assert set(formats.FORMATS) == checked


def test_a_file_older_than_any_read_names_the_command_that_writes_it_again(tmp_path):
    fmt = formats.DiskFormat("sample", "sample.json", 3, "run `posedive sample` again", oldest=2)
    with pytest.raises(FormatError, match="format 1 is older") as refused:
        formats.check_version(fmt, 1, tmp_path / "sample.json")
    assert refused.value.hint == "run `posedive sample` again"
    assert formats.check_version(fmt, 2, "x") == 2 and formats.check_version(fmt, 3, "x") == 3
    with pytest.raises(FormatError, match="format version 'two'"):
        formats.check_version(fmt, "two", "x")


def test_files_written_before_their_format_had_a_version_still_read(tmp_path):
    from posedive.generation.checkpoint import GeneratorMetadata, read_contract
    from posedive.generation.contract import POSEDIVE_CONTRACT

    path = GeneratorMetadata(description="old", resolution=(64, 128)).save(tmp_path)
    data = json.loads(path.read_text())
    del data["format_version"]
    path.write_text(json.dumps(data))
    assert GeneratorMetadata.load(tmp_path).description == "old"
    saved = POSEDIVE_CONTRACT.to_config()
    saved.pop("version", None)
    (tmp_path / paths.GUIDER_CONFIG).parent.mkdir(parents=True)
    (tmp_path / paths.GUIDER_CONFIG).write_text(json.dumps({"conditioning_channels": 7, "conditions": saved}))
    assert read_contract(tmp_path).map_names == POSEDIVE_CONTRACT.map_names


def _held_claim(release_dir: Path, record: dict) -> int:
    claims = release_dir / paths.CLAIMS_DIR
    claims.mkdir(parents=True)
    path = claims / "4242-abcd.json"
    path.write_text(json.dumps(record))
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_running_build_of_a_newer_claim_format_holds_every_shard(tmp_path):
    from posedive.builder.claims import claim_shards

    record = {"format_version": formats.BUILD_CLAIM.version + 1, "pid": 4242, "host": "node", "part": None,
              "shards": [7], "started": "2026-01-01T00:00:00+00:00"}
    fd = _held_claim(tmp_path, record)
    try:
        with pytest.raises(LockError, match=r"shards \[0\].*whose claim .* cannot be read"):
            claim_shards(tmp_path, [0], wait_s=1)
    finally:
        os.close(fd)


def test_a_claim_written_before_claims_had_a_version_still_reads(tmp_path):
    from posedive.builder.claims import claim_shards

    record = {"pid": 4242, "host": "node", "part": "1/2", "shards": [0, 2], "started": "2026-01-01T00:00:00+00:00"}
    fd = _held_claim(tmp_path, record)
    try:
        with pytest.raises(LockError, match=r"shards \[2\] .* pid 4242 on node \(part 1/2"):
            claim_shards(tmp_path, [1, 2], wait_s=1)
    finally:
        os.close(fd)


def _file_names_of_paths() -> set[str]:
    return {value for name, value in vars(paths).items()
            if name.isupper() and isinstance(value, str) and ("." in value or "/" in value)}


def test_file_names_are_spelt_only_in_paths():
    names = _file_names_of_paths()
    spelt = []
    for module in sorted(PACKAGE_ROOT.rglob("*.py")):
        if module == PACKAGE_ROOT / "paths.py":
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                spelt.append(f"{module.relative_to(PACKAGE_ROOT)}:{node.lineno} {node.value!r}")
    assert not spelt, "use posedive.paths for these file names:\n  " + "\n  ".join(spelt)
