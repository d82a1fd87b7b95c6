"""Market-1501 layout (also used by CUHK03-NP and by ``posedive export``).

``bounding_box_train/``, ``bounding_box_test/``, ``query/``; file names ``PPPP_cCsS_FFFFFF_NN.jpg``
parsed with the rule every Re-ID codebase uses, ``([-\\d]+)_c(\\d)``. pid -1 is junk (dropped); pid 0
marks distractors, kept in the gallery.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import SourceError, SourceIndex, SourceRecord, Split, finish_index, list_image_names, require_dir

MARKET_NAME = re.compile(r"([-\d]+)_c(\d)")
MARKET_FOLDERS: dict[str, Split] = {"bounding_box_train": "train", "query": "query", "bounding_box_test": "gallery"}


def parse_market_name(path: Path) -> tuple[int, int]:
    match = MARKET_NAME.search(path.name)
    if match is None:
        raise SourceError(f"{path}: file name does not follow the Market-1501 rule '<pid>_c<cam>...'")
    return int(match.group(1)), int(match.group(2))


def scan_market_folders(root: Path, dataset: str) -> tuple[list[SourceRecord], int]:
    """Every record, from the file names alone (a million names take seconds: the relative path is
    joined as a string, and no record's full path is made until it is asked for)."""
    records: list[SourceRecord] = []
    junk = 0
    for folder, split in MARKET_FOLDERS.items():
        directory = require_dir(root / folder, f"{dataset} {split} split")
        for name in list_image_names(directory):
            match = MARKET_NAME.search(name)
            if match is None:
                raise SourceError(f"{directory / name}: file name does not follow the Market-1501 rule "
                                  f"'<pid>_c<cam>...'")
            pid, camid = int(match.group(1)), int(match.group(2))
            if pid == -1:
                junk += 1
                continue
            if pid == 0 and split != "gallery":
                raise SourceError(f"{directory / name}: distractor pid 0 outside the gallery")
            records.append(SourceRecord(root=root, relpath=f"{folder}/{name}", pid=pid, camid=camid, split=split))
    return records, junk


def read_market1501(root: Path, check_images: bool = False) -> SourceIndex:
    records, junk = scan_market_folders(require_dir(root, "source.root"), "Market-1501")
    return finish_index("Market-1501", "market1501", root, records, junk=junk, check_images=check_images)
