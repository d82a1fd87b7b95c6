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


# All of a folder's names searched at once, joined by newlines (a million searches cost a million
# calls): anchored at a line's start, the lazy prefix finds the leftmost match, the one a search finds.
_MARKET_LINE = re.compile(r"^[^\n]*?" + MARKET_NAME.pattern, re.MULTILINE)


def market_ids(directory: Path, names: list[str]) -> list[tuple[str, str]]:
    """The (pid, camera) texts ``MARKET_NAME.search`` finds in each of ``names``, files of ``directory``."""
    text = "\n".join(names)
    found = _MARKET_LINE.findall(text)
    if len(found) == len(names) and text.count("\n") == len(names) - 1:
        return found
    ids = []  # a name the rule does not fit (or a name holding a newline): one at a time
    for name in names:
        match = MARKET_NAME.search(name)
        if match is None:
            raise SourceError(f"{directory / name}: file name does not follow the Market-1501 rule '<pid>_c<cam>...'")
        ids.append(match.groups())
    return ids


def scan_market_folders(root: Path, dataset: str) -> tuple[list[SourceRecord], int]:
    """Every record, from the file names alone (a million names take seconds: the relative path is
    joined as a string, and no record's full path is made until it is asked for)."""
    records: list[SourceRecord] = []
    junk = 0
    for folder, split in MARKET_FOLDERS.items():
        directory = require_dir(root / folder, f"{dataset} {split} split")
        names = list_image_names(directory)
        for name, (pid_text, camid_text) in zip(names, market_ids(directory, names), strict=True):
            pid, camid = int(pid_text), int(camid_text)
            if pid == -1:
                junk += 1
                continue
            if pid == 0 and split != "gallery":
                raise SourceError(f"{directory / name}: distractor pid 0 outside the gallery")
            records.append(SourceRecord(root, f"{folder}/{name}", pid, camid, split))
    return records, junk


def read_market1501(root: Path, check_images: bool = False) -> SourceIndex:
    records, junk = scan_market_folders(require_dir(root, "source.root"), "Market-1501")
    return finish_index("Market-1501", "market1501", root, records, junk=junk, check_images=check_images)
