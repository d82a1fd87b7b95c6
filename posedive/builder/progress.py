"""The build's progress bar: work units done, samples/s, accepted / rejected / short, ETA."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class BuildProgress:
    def __init__(self, total_units: int, enabled: bool = True, console: Console | None = None):
        self.total = total_units
        self.enabled = enabled
        self.accepted = self.rejected = self.short = 0
        self._started = time.perf_counter()
        self._progress = Progress(
            TextColumn("[bold]building"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.2f} samples/s"),
            TextColumn("accepted {task.fields[accepted]} rejected {task.fields[rejected]} short {task.fields[short]}"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
        )
        self._task = None

    def __enter__(self) -> "BuildProgress":
        self._progress.__enter__()
        self._task = self._progress.add_task("build", total=self.total, rate=0.0, accepted=0, rejected=0, short=0)
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def record(self, outcome: str) -> None:
        """``accepted`` and ``short`` finish a work unit; ``rejected`` is one failed attempt."""
        if outcome == "accepted":
            self.accepted += 1
        elif outcome == "rejected":
            self.rejected += 1
        elif outcome == "short":
            self.short += 1
        else:
            raise ValueError(f"unknown outcome {outcome!r}")
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self._progress.update(
            self._task,
            completed=self.accepted + self.short,
            rate=self.accepted / elapsed,
            accepted=self.accepted,
            rejected=self.rejected,
            short=self.short,
        )
