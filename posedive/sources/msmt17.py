"""MSMT17 V1 and V2: images listed in ``list_{train,val,query,gallery}.txt``.

Each list line is ``<relative image path> <pid>``; the camera id is the third ``_`` field of the file
name (``0000_000_01_0303morning_0015_0.jpg`` -> camera 1). V1 keeps images in ``train/`` and ``test/``,
V2 in ``mask_train_v2/`` and ``mask_test_v2/``. The root may be the folder holding the lists or its
parent holding ``MSMT17_V1``/``MSMT17_V2``.
"""

from __future__ import annotations

from pathlib import Path

from .base import SourceError, SourceIndex, SourceRecord, Split, finish_index, relative, require_dir

IMAGE_FOLDERS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}


def _locate(root: Path, version: str) -> Path:
    for candidate in (root, root / f"MSMT17_{version}"):
        if (candidate / "list_train.txt").is_file():
            return candidate
    raise SourceError(f"source.root: no list_train.txt in {root} or {root / f'MSMT17_{version}'}")


def _read_list(list_file: Path, image_dir: Path, root: Path, split: Split) -> list[SourceRecord]:
    if not list_file.is_file():
        raise SourceError(f"MSMT17 list file {list_file} does not exist")
    records = []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            name, pid = parts[0], int(parts[1])
            camid = int(Path(name).name.split("_")[2])
        except (IndexError, ValueError):
            raise SourceError(f"{list_file}:{number}: expected '<path> <pid>' with a '<pid>_<n>_<cam>_...' "
                              f"file name, got {line!r}") from None
        path = image_dir / name
        records.append(SourceRecord(root=root, relpath=relative(path, root), pid=pid, camid=camid, split=split))
    return records


def read_msmt17(root: Path, version: str = "V2", val_in_train: bool = True, check_images: bool = False) -> SourceIndex:
    base = _locate(require_dir(root, "source.root"), version)
    train_dir, test_dir = (require_dir(base / name, f"MSMT17 {version} images") for name in IMAGE_FOLDERS[version])
    lists: list[tuple[str, Path, Split]] = [("train", train_dir, "train")]
    if val_in_train:
        lists.append(("val", train_dir, "train"))
    lists += [("query", test_dir, "query"), ("gallery", test_dir, "gallery")]
    records = []
    for list_name, image_dir, split in lists:
        records += _read_list(base / f"list_{list_name}.txt", image_dir, root, split)
    missing = [r for r in records if not r.path.is_file()]
    if missing:
        raise SourceError(f"MSMT17: {len(missing)} listed images are missing, e.g. {missing[0].path}")
    return finish_index(f"MSMT17-{version}", "msmt17", root, records, check_images=check_images)
