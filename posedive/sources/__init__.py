"""Source readers: Market-1501, MSMT17 (V1/V2), CUHK03 (new protocol) and a generic folder.

``read_source(config, base_dir)`` reads the dataset a recipe's ``source`` section names, through the
registry of formats in :mod:`posedive.sources.registry`.
"""

from __future__ import annotations

from .base import SPLITS, SourceError, SourceIndex, SourceRecord
from .market1501 import MARKET_NAME, parse_market_name
from .registry import SOURCE_FORMATS, SourceFormat, read_source, source_config, source_format

__all__ = [
    "MARKET_NAME",
    "SOURCE_FORMATS",
    "SPLITS",
    "SourceError",
    "SourceFormat",
    "SourceIndex",
    "SourceRecord",
    "parse_market_name",
    "read_source",
    "source_config",
    "source_format",
]
