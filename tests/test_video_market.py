"""The committed real-pedestrian fixture, and ``posedive pairs`` end to end on the committed clip of vtest.avi."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from posedive.cli import app
from posedive.sources.market1501 import read_market1501

FIXTURE = Path(__file__).parent / "fixtures" / "vtest_market"
VTEST = Path(__file__).parent / "fixtures" / "vtest_clip" / "vtest_frames_000-260.mp4"  # frames 0-260 of vtest.avi
NAME = re.compile(r"^(-1|\d{4})_c([1-9])s1_(\d{6})_00\.jpg$")


def test_fixture_follows_the_market_layout_exactly():
    files = sorted(p for p in FIXTURE.rglob("*.jpg"))
    assert sum(p.stat().st_size for p in files) < 2 * 1024 * 1024
    cameras: dict[int, set[int]] = defaultdict(set)
    splits: dict[int, set[str]] = defaultdict(set)
    for path in files:
        match = NAME.match(path.name)
        assert match, path.name
        assert path.parent.name in ("bounding_box_train", "bounding_box_test", "query")
        pid, cam = int(match.group(1)), int(match.group(2))
        cameras[pid].add(cam)
        splits[pid].add(path.parent.name)
    assert -1 in cameras and 0 in cameras  # junk and distractors for the readers to handle
    people = [pid for pid in cameras if pid > 0]
    assert 15 <= len(people) <= 25
    assert all(len(cameras[pid]) >= 2 for pid in people)
    # Market's split: an identity is either train or test, never both.
    for pid in people:
        assert splits[pid] in ({"bounding_box_train"}, {"query", "bounding_box_test"})
    index = read_market1501(FIXTURE)
    queries = index.split("query")
    gallery = index.split("gallery")
    assert len({r.pid for r in index.split("train")}) >= 0.5 * len(people)
    # Every query has a match under another camera (the evaluation protocol's requirement).
    for query in queries:
        assert any(g.pid == query.pid and g.camid != query.camid for g in gallery)


def test_pairs_command_writes_tracks_market_layout_and_training_pairs(tmp_path):
    from posedive.generation.data import iter_pairs

    out, market = tmp_path / "out", tmp_path / "market"
    result = CliRunner().invoke(
        app,
        ["pairs", str(VTEST), "--out", str(out), "--market-layout", str(market), "--max-frames", "260",
         "--max-pairs-per-track", "3", "--pair-width", "64", "--identities", "6", "--threads", "1", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tracks = json.loads((out / "tracks.json").read_text())
    kept = [t for t in tracks["tracks"] if t["kept"]]
    assert kept and all(d["frame"] < 260 for t in tracks["tracks"] for d in t["detections"])
    index = read_market1501(market)
    assert 1 <= len({r.pid for r in index.records if r.pid > 0}) <= 6
    assert (out / "market_contact_sheet.png").is_file()

    pairs = list(iter_pairs(out))
    assert pairs
    by_track = defaultdict(int)
    for pair in pairs:
        reference, target = pair.frames
        assert abs(reference - target) >= 15
        assert pair.target.shape == (128, 64, 3) and pair.depth.shape == (128, 64)
        assert pair.key.endswith(f"f{target:06d}-r{reference:06d}") and pair.key.startswith(pair.pid)
        by_track[pair.pid] += 1
        # The target's maps lie on the person: a body-sized silhouette around the crop's centre.
        mask = pair.depth > 0
        rows, cols = np.nonzero(mask)
        assert rows.max() - rows.min() >= 0.6 * 128
        assert abs(cols.mean() - 32) < 10 and abs(rows.mean() - 64) < 16
        assert pair.skeleton.any() and pair.provenance["fit"]["success"]
    assert max(by_track.values()) <= 3
    # A second run into the same folders is refused rather than mixed.
    again = CliRunner().invoke(
        app, ["pairs", str(VTEST), "--out", str(out), "--market-layout", str(market), "--max-frames", "50", "--quiet"]
    )
    assert again.exit_code != 0 and "already holds" in again.output
