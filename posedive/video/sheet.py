"""Contact sheets: one row per identity, so a person can check at a glance that a row is one person."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError


def contact_sheet(rows: dict[str, list[tuple[str, np.ndarray]]], out: Path, scale: int = 1) -> Path:
    """Write a PNG grid: each row is ``label -> [(caption, BGR image)]``; images share one size."""
    import cv2

    if not rows:
        raise ValueError(f"{out}: nothing to put on the contact sheet")
    first = next(image for items in rows.values() for _, image in items)
    h, w = first.shape[0] * scale, first.shape[1] * scale
    label_w, caption_h = 90, 12
    columns = max(len(items) for items in rows.values())
    sheet = np.full((len(rows) * (h + caption_h), label_w + columns * (w + 2), 3), 255, np.uint8)
    for r, (label, items) in enumerate(rows.items()):
        top = r * (h + caption_h)
        cv2.putText(sheet, label, (4, top + h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for c, (caption, image) in enumerate(items):
            left = label_w + c * (w + 2)
            sheet[top : top + h, left : left + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST)
            cv2.putText(sheet, caption, (left, top + h + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet):
        raise OutputError(f"{out}: OpenCV could not write the contact sheet",
                          hint="check that the folder is writable and the name ends in .png")
    return out


def market_sheet(root: Path, out: Path) -> Path:
    """Contact sheet of a Market-layout folder: one row per pid, captions ``split c<cam> frame``."""
    import cv2

    from ..sources.market1501 import MARKET_FOLDERS, parse_market_name

    rows: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
    short = {"bounding_box_train": "tr", "bounding_box_test": "ga", "query": "q"}
    for folder in MARKET_FOLDERS:
        for path in sorted((root / folder).glob("*.jpg")):
            pid, cam = parse_market_name(path)
            image = cv2.imread(str(path))
            if image is None:
                raise InputError(f"{path}: cannot read this image", hint="replace or remove the file")
            rows[f"pid {pid}"].append((f"{short[folder]} c{cam} {path.stem.split('_')[2][-3:]}", image))
    ordered = dict(sorted(rows.items(), key=lambda item: int(item[0].split()[1])))
    return contact_sheet(ordered, out)
