"""Viewpoint and pose splits of real pedestrian crops (Market-1501 layout), labelled by BlazePose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posedive.analysis.splits import count_valid_queries, make_split, open_source, read_split, write_split

FIXTURE = Path(__file__).parent / "fixtures" / "vtest_market"

pytestmark = pytest.mark.skipif(not (FIXTURE / "READY").is_file(), reason="real crops fixture not written yet")


@pytest.fixture(scope="module")
def pose_cache(tmp_path_factory):
    """One estimator pass shared by both splits (the cache is keyed by image content)."""
    return tmp_path_factory.mktemp("pose-cache")


@pytest.mark.parametrize("by, pattern", [("viewpoint", r"c(\d+)-(front|left|back|right)"), ("pose", r"pose\d\d")])
def test_real_crops_split_without_shared_groups_or_identities(by, pattern, pose_cache, tmp_path):
    index = open_source(FIXTURE)
    result = make_split(index, by, clusters=6, seed=0, workers=1, cache_dir=pose_cache)
    folder = write_split(result, tmp_path / by)
    rows = read_split(folder)
    report = result.report
    train = [r for r in rows if r.split == "train"]
    test = [r for r in rows if r.split != "train"]
    assert train and test and any(r.split == "query" for r in rows)
    assert not {r.group for r in train} & {r.group for r in test}
    assert not {r.pid for r in train} & {r.pid for r in test if r.pid > 0}
    assert report.overlap.model_dump() == {"identities": 0, "groups": 0, "images": 0}
    assert len(rows) + sum(report.excluded.values()) == len(index.records)
    assert count_valid_queries(rows) == report.sizes["query"].images
    if by == "viewpoint":  # orientation from the body fitter, the landmark geometry where a fit fails
        assert report.orientation == "fit" and report.orientation_sources["fit"] >= 0.8 * len(index.records)
        assert '"orientation_sources"' in (folder / "split.json").read_text()
    else:
        assert report.orientation is None and report.orientation_sources is None
    for row in rows:
        match = re.fullmatch(pattern, row.group)
        assert match, row.group
        if by == "viewpoint":
            assert int(match.group(1)) == row.camid
