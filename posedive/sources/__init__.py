"""Source readers: Market-1501, MSMT17 (V1/V2), CUHK03 (new protocol) and a generic folder.

``read_source(config, base_dir)`` dispatches on the recipe's ``source.format``.
"""

from __future__ import annotations

from pathlib import Path

from ..recipe import CUHK03Source, FolderSource, Market1501Source, MSMT17Source
from .base import SPLITS, SourceError, SourceIndex, SourceRecord
from .cuhk03 import read_cuhk03
from .folder import read_folder
from .market1501 import MARKET_NAME, parse_market_name, read_market1501
from .msmt17 import read_msmt17

__all__ = [
    "MARKET_NAME",
    "SPLITS",
    "SourceError",
    "SourceIndex",
    "SourceRecord",
    "parse_market_name",
    "read_source",
]


def read_source(config, base_dir: Path | None = None) -> SourceIndex:
    """Read the dataset a recipe's ``source`` section describes (relative roots against ``base_dir``)."""
    root = Path(config.root)
    if not root.is_absolute() and base_dir is not None:
        root = Path(base_dir) / root
    if isinstance(config, Market1501Source):
        return read_market1501(root)
    if isinstance(config, MSMT17Source):
        return read_msmt17(root, config.version, config.val_in_train)
    if isinstance(config, CUHK03Source):
        return read_cuhk03(root, config.variant)
    if isinstance(config, FolderSource):
        return read_folder(root, config.camid)
    raise SourceError(f"unknown source format {getattr(config, 'format', config)!r}")
