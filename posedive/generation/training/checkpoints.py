"""Resumable training state: ``OUTPUT/checkpoints/step-NNNNNNN`` (accelerate state plus the step)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from accelerate import Accelerator

CHECKPOINTS = "checkpoints"
STEP_FILE = "trainer.json"


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("step-*")) if folder.is_dir() else []
    return found[-1] if found else None


def checkpoint_step(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / STEP_FILE).read_text())["step"])


def save_checkpoint(accelerator: Accelerator, folder: Path, step: int, keep: int) -> None:
    """Write the state after ``step`` optimizer steps; keep the newest ``keep`` checkpoints."""
    target = folder / f"step-{step:07d}"
    accelerator.save_state(str(target))
    if accelerator.is_main_process:
        (target / STEP_FILE).write_text(json.dumps({"step": step}) + "\n")
        for old in sorted(folder.glob("step-*"))[:-keep]:
            shutil.rmtree(old)
