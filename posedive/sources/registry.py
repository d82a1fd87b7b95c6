"""The registry of source formats: one entry per ``source.format`` a recipe may name.

Each entry knows the recipe model of its ``source`` section (those stay in ``posedive.recipe``: pure
data), the reader that turns a dataset folder into a ``SourceIndex``, the dataset's display name and
the text a release's card cites for its licence. Everything that needs a format's name or licence
(the readers' dispatch, evaluation splits, ``posedive stats``, dataset cards) reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InputError, PathNotFound, SourceError
from ..recipe import CUHK03Source, FolderSource, Market1501Source, MSMT17Source
from .base import SourceIndex
from .cuhk03 import read_cuhk03
from .folder import read_folder
from .market1501 import MARKET_FOLDERS, read_market1501
from .msmt17 import read_msmt17

MARKET_TRAIN = next(folder for folder, split in MARKET_FOLDERS.items() if split == "train")


@dataclass(frozen=True)
class SourceFormat:
    """One source format: its recipe model, its reader and what a release card says about it."""

    name: str
    dataset: str
    config: type
    read: Callable[[object, Path, bool], SourceIndex]
    """``read(config, root, check_images)``: lists the images by name; decodes each with ``check_images``."""
    # The dataset as a card cites it; None for a user's own folder, whose terms posedive cannot know.
    citation: str | None = None


SOURCE_FORMATS: dict[str, SourceFormat] = {
    entry.name: entry
    for entry in (
        SourceFormat("market1501", "Market-1501", Market1501Source, lambda config, root, check: read_market1501(root, check),
                     citation="Market-1501 (Zheng et al., ICCV 2015)"),
        SourceFormat("msmt17", "MSMT17", MSMT17Source,
                     lambda config, root, check: read_msmt17(root, config.version, config.val_in_train, check),
                     citation="MSMT17 (Wei et al., CVPR 2018)"),
        SourceFormat("cuhk03", "CUHK03", CUHK03Source, lambda config, root, check: read_cuhk03(root, config.variant, check),
                     citation="CUHK03 (Li et al., CVPR 2014; new protocol of Zhong et al., CVPR 2017)"),
        SourceFormat("folder", "image folder", FolderSource, lambda config, root, check: read_folder(root, config.camid, check)),
    )
}


def source_format(name: str) -> SourceFormat:
    """The registered format ``name``; an unknown name is an error that lists the valid ones."""
    if name not in SOURCE_FORMATS:
        raise SourceError(f"unknown source format {name!r}; valid: {', '.join(SOURCE_FORMATS)}")
    return SOURCE_FORMATS[name]


def read_source(config, base_dir: Path | None = None, check_images: bool = False) -> SourceIndex:
    """Read the dataset a recipe's ``source`` section describes (relative roots against ``base_dir``):
    its file names only, or, with ``check_images``, every image decoded (unreadable ones listed)."""
    root = Path(config.root)
    if not root.is_absolute() and base_dir is not None:
        root = Path(base_dir) / root
    return source_format(config.format).read(config, root, check_images)


def source_config(root: Path | str, format: str | None = None):
    """The ``source`` section for a dataset folder named on the command line, with the format's
    defaults. Without ``format`` only Market-1501's layout is recognised (by its training folder)."""
    root = Path(root)
    if not root.is_dir():
        raise PathNotFound(f"source folder {root} does not exist")
    if format is None:
        if not (root / MARKET_TRAIN).is_dir():
            raise InputError(f"{root}: cannot tell the dataset layout; pass --format ({', '.join(SOURCE_FORMATS)})")
        format = "market1501"
    return source_format(format).config(format=format, root=root)
