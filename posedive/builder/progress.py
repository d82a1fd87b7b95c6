"""The build's progress: per-work-unit events and the bar that counts them (samples/s, ETA).

A shard builder emits a ``UnitEvent`` the moment a work unit is accepted, an attempt is rejected or a
unit runs out of attempts, wherever it runs; the engine carries the events to the driver, so the bar
moves per image with every engine, not per shard. A worker that dies and is retried emits some events
again, and a shard's result carries all of its events (for events lost with a dead worker): the bar
counts each distinct event once.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Literal

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

Outcome = Literal["accepted", "rejected", "short"]


class UnitEvent(BaseModel):
    """What just happened to one work unit: ``accepted`` (at ``attempt``) and ``short`` (out of
    attempts) finish it; ``rejected`` is one failed attempt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shard: int
    key: str
    outcome: Outcome
    attempt: int | None = None


EventHandler = Callable[[UnitEvent], None]


class BuildProgress:
    def __init__(self, total_units: int, enabled: bool = True, console: Console | None = None):
        self.total = total_units
        self.enabled = enabled
        self.accepted = self.rejected = self.short = 0
        self._seen: set[UnitEvent] = set()
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

    def record(self, event: UnitEvent) -> None:
        """Count one event, unless it was counted before."""
        if event in self._seen:
            return
        self._seen.add(event)
        setattr(self, event.outcome, getattr(self, event.outcome) + 1)
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self._progress.update(
            self._task,
            completed=self.accepted + self.short,
            rate=self.accepted / elapsed,
            accepted=self.accepted,
            rejected=self.rejected,
            short=self.short,
        )

    def settle(self, events: Iterable[UnitEvent]) -> None:
        """Count whatever of a finished shard's events has not arrived (a worker died after sending it)."""
        for event in events:
            self.record(event)
