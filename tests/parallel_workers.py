"""Workers for the tests of ``posedive.parallel``, importable by spawned processes and Ray workers."""

from __future__ import annotations

import os
import sys

from posedive.parallel import LIMITED_VARIABLES

STATE = "fresh"
"""A test sets this in its own process; a worker started with ``spawn`` still sees ``"fresh"``."""


class Echo:
    """Reports where and how it runs; emits two events per item; ``"fail"`` raises, ``"die"`` kills
    its process."""

    built = 0  # factory calls in this process

    def __init__(self, import_torch: bool = False) -> None:
        Echo.built += 1
        if import_torch:
            import torch  # noqa: F401

    def __call__(self, item, emit) -> dict:
        if item == "fail":
            raise ValueError(f"item {item} cannot be done")
        if item == "die":
            os._exit(3)
        for step in range(2):
            emit({"item": item, "step": step})
        torch = sys.modules.get("torch")
        return {"item": item, "pid": os.getpid(), "built": Echo.built, "state": STATE,
                "environment": {name: os.environ.get(name) for name in LIMITED_VARIABLES},
                "torch_threads": torch.get_num_threads() if torch is not None else None}


def run(backend, items, factory=Echo, ordered=True):
    """Map ``items`` with ``Echo`` workers; return the results and what the caller saw, in order:
    ("event", item) per event, ("result", item) per result."""
    seen: list[tuple[str, str]] = []
    results = []
    for result in backend.map(factory, items, ordered=ordered, on_event=lambda e: seen.append(("event", e["item"]))):
        seen.append(("result", result["item"]))
        results.append(result)
    return results, seen


def events_come_before_their_result(seen, items) -> bool:
    return all(seen.count(("event", item)) == 2
               and seen.index(("result", item)) > max(i for i, entry in enumerate(seen) if entry == ("event", item))
               for item in items)
