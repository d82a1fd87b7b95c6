"""Recipes and builds over synthetic Market-1501 replicas, shared by the build-frame tests."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from layouts import make_market

from posedive.errors import LockError
from posedive.recipe import parse_recipe


def frame_recipe(tmp_path: Path, **overrides):
    source_root = tmp_path / "market"
    if not source_root.exists():
        make_market(source_root, train_pids=(2, 7, 10, 11, 15), dark={7: 5})
    data = {
        "name": "frame-test",
        "version": "1.0.0",
        "source": {"format": "market1501", "root": "market"},
        "images_per_pid": 3,
        "max_attempts_per_image": 3,
        "filter": {"tau_ref": 0.6, "tau_tar": 0.6, "eps_gen": 0.2, "tau_gen": 0.6},
        "generator": {"weights": "tests/double-generator", "width": 32, "height": 64, "batch_size": 4},
        "output": {"dir": "out", "samples_per_shard": 4},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_recipe(data, base_dir=tmp_path)


def refuse_the_running_part_then_build_the_other(first, build_second) -> None:
    """``first`` (a process building part 1/2 of a four-shard release) holds its claim: a second build
    of the same part, or of every shard, is refused naming it, with nothing of the first touched; the
    other part builds at once, and the first then finishes."""
    try:
        for part in ((1, 2), None):
            with pytest.raises(LockError, match="being built by") as refused:
                build_second(part)
            assert f"pid {first.pid} on {socket.gethostname()}" in str(refused.value)
            assert first.poll() is None, "the first build ended before the second was refused"
        assert build_second((2, 2)).built_shards == [1, 3]
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-3000:]
    assert "[0, 2]" in out
