"""A generic folder: ``<root>/<identity>/<image>``. Every image is a training image.

Identity folder names are mapped to integer pids in sorted order (numeric names keep their value),
and the folder name is kept in the record's relative path, so provenance still names it.
"""

from __future__ import annotations

from pathlib import Path

from .base import SourceError, SourceIndex, SourceRecord, finish_index, list_images, relative, require_dir


def read_folder(root: Path, camid: int = 0, check_images: bool = False) -> SourceIndex:
    require_dir(root, "source.root")
    identity_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not identity_dirs:
        raise SourceError(f"source.root: {root} has no identity folders (expected <root>/<identity>/<image>)")
    numeric = all(d.name.isdigit() for d in identity_dirs)
    records = []
    for position, directory in enumerate(identity_dirs, start=1):
        pid = int(directory.name) if numeric else position
        for path in list_images(directory):
            records.append(SourceRecord(root=root, relpath=relative(path, root), pid=pid, camid=camid, split="train"))
    return finish_index(root.name, "folder", root, records, check_images=check_images)
