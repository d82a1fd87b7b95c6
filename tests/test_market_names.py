"""Market-1501 names are parsed for a whole folder at once, exactly as one search per name reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from posedive.recipe import Market1501Source
from posedive.sources import MARKET_NAME, SourceError, read_source
from posedive.sources.market1501 import market_ids

TRICKY = ["0002_c1s1_000451_03.jpg", "-1_c3s2_000001_00.jpg", "12_c3_45_c6.jpg", "a12_c3.png", "x-3_c2.jpg",
          "1-2_c4.jpg", "007_c5_c6.jpg", "_c1_9_c2.jpg", "12__c3_4_c5.jpg", "١٢_c٣.jpg", "0000_c6s3_094.jpg"]


def test_folder_at_once_equals_one_search_per_name():
    assert market_ids(Path("x"), TRICKY) == [MARKET_NAME.search(name).groups() for name in TRICKY]
    assert market_ids(Path("x"), []) == []


@pytest.mark.parametrize("bad", ["nothing.jpg", "0002_c1\nextra.jpg"])
def test_a_name_off_the_rule_is_named(bad):
    names = ["0002_c1s1_000451_03.jpg", bad]
    if "\n" in bad:  # a newline in a name cannot split it in two
        assert market_ids(Path("x"), names) == [MARKET_NAME.search(name).groups() for name in names]
        return
    with pytest.raises(SourceError, match=r"x/nothing\.jpg: file name does not follow"):
        market_ids(Path("x"), names)


def test_records_know_their_paths(tmp_path):
    for folder in ("bounding_box_train", "query", "bounding_box_test"):
        (tmp_path / folder).mkdir()
    (tmp_path / "bounding_box_train" / "0002_c1s1_000451_03.jpg").touch()
    (tmp_path / "query" / "0003_c2s1_000451_03.jpg").touch()
    (tmp_path / "bounding_box_test" / "bad.jpg").touch()
    with pytest.raises(SourceError, match="bad.jpg"):
        read_source(Market1501Source(format="market1501", root=tmp_path))
    (tmp_path / "bounding_box_test" / "bad.jpg").unlink()
    index = read_source(Market1501Source(format="market1501", root=tmp_path))
    assert [(r.path, r.relpath, r.pid, r.camid, r.split) for r in index.records] == [
        (tmp_path / "bounding_box_train" / "0002_c1s1_000451_03.jpg", "bounding_box_train/0002_c1s1_000451_03.jpg", 2, 1, "train"),
        (tmp_path / "query" / "0003_c2s1_000451_03.jpg", "query/0003_c2s1_000451_03.jpg", 3, 2, "query")]
