"""What every benchmark writes beside its figures: the machine it ran on, and the result file itself."""

from __future__ import annotations

import json
import logging
import os
import platform
from pathlib import Path


def machine(**versions: str) -> dict:
    """The CPU count, processor and Python of this machine, plus the given library versions."""
    return {"cpus": os.cpu_count(), "processor": platform.machine(), "python": platform.python_version(), **versions}


def write_result(path: Path, result: dict, logger: logging.Logger) -> None:
    """Write ``result`` as indented JSON to ``path`` (its folder made if needed) and log it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    logger.info("%s", json.dumps(result, indent=2))
