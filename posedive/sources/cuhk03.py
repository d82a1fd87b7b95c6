"""CUHK03 under the new protocol (767 training / 700 test identities), labeled or detected boxes.

Two layouts are accepted, the two the field uses:

* CUHK03-NP: ``<root>/{labeled,detected}/{bounding_box_train,query,bounding_box_test}`` with
  Market-1501 file names.
* Extracted images ``<root>/images_{labeled,detected}/<cam>_<pid>_<view>_<n>.png`` (as produced from
  ``cuhk-03.mat``) plus the protocol file ``cuhk03_new_protocol_config_{variant}.mat`` whose
  ``filelist``, ``labels``, ``camId`` and 1-based ``train_idx``/``query_idx``/``gallery_idx`` define
  the split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SourceError, SourceIndex, SourceRecord, Split, finish_index, relative, require_dir
from .market1501 import scan_market_folders


def _read_protocol(root: Path, variant: str) -> list[SourceRecord]:
    from scipy.io import loadmat

    protocol_file = root / f"cuhk03_new_protocol_config_{variant}.mat"
    image_dir = require_dir(root / f"images_{variant}", "CUHK03 images")
    try:
        protocol = loadmat(str(protocol_file))
    except (OSError, ValueError) as error:
        raise SourceError(f"{protocol_file}: cannot read the CUHK03 protocol file ({error})") from None
    try:
        names = [str(np.asarray(item).ravel()[0]) for item in protocol["filelist"].ravel()]
        labels = protocol["labels"].ravel().astype(int)
        cams = protocol["camId"].ravel().astype(int)
        splits: list[tuple[str, Split]] = [("train_idx", "train"), ("query_idx", "query"), ("gallery_idx", "gallery")]
        records = []
        for field_name, split in splits:
            for index in protocol[field_name].ravel().astype(int) - 1:
                path = image_dir / names[index]
                records.append(SourceRecord(root=root, relpath=relative(path, root), pid=int(labels[index]),
                                            camid=int(cams[index]), split=split))
    except (KeyError, IndexError) as error:
        raise SourceError(f"{protocol_file}: not a CUHK03 new-protocol file (missing or bad {error})") from None
    missing = [r for r in records if not r.path.is_file()]
    if missing:
        raise SourceError(f"CUHK03: {len(missing)} images named in {protocol_file.name} are missing, "
                          f"e.g. {missing[0].path}")
    return records


def read_cuhk03(root: Path, variant: str = "labeled", check_images: bool = False) -> SourceIndex:
    require_dir(root, "source.root")
    np_layout = root / variant
    if (np_layout / "bounding_box_train").is_dir():
        records, junk = scan_market_folders(np_layout, f"CUHK03-NP {variant}")
        records = [SourceRecord(root=root, relpath=relative(r.path, root), pid=r.pid, camid=r.camid, split=r.split)
                   for r in records]
        return finish_index(f"CUHK03-NP-{variant}", "cuhk03", root, records, junk=junk,
                            check_images=check_images)
    if (root / f"cuhk03_new_protocol_config_{variant}.mat").is_file():
        return finish_index(f"CUHK03-{variant}", "cuhk03", root, _read_protocol(root, variant),
                            check_images=check_images)
    raise SourceError(
        f"source.root: {root} holds neither CUHK03-NP ({np_layout}/bounding_box_train) nor "
        f"cuhk03_new_protocol_config_{variant}.mat with images_{variant}/"
    )
