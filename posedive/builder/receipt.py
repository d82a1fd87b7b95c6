"""A built shard's receipt: what a worker sends back after writing its shard where the release lives.

A worker writes its shard's files itself, straight into the release location (a local folder or an
fsspec URL), with the same temporary-name-then-rename protocol and the same bytes whichever worker or
engine writes them: the rejected log and stats first, the shard last, so the shard's existence marks
the whole shard as done. What travels back to the driver is only the ``ShardReceipt`` (counts, hash,
size, stats and progress events: a few kilobytes), never the images, so the driver's memory does not
grow with shard size or with the number of workers.
"""

from __future__ import annotations

from typing import Sequence

from pydantic import BaseModel, ConfigDict

from .. import paths
from ..release import RejectedAttempt, ShardStats, UnreadableImage
from ..shards import write_shard_to
from ..storage import Store
from .progress import UnitEvent


class ShardReceipt(BaseModel):
    """One shard written to the release location: its name, counts, sha256 and size, its stats (with
    the source images found unreadable) and the progress events its build emitted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shard: int
    name: str
    samples: int
    rejected: int
    sha256: str
    bytes: int
    stats: ShardStats
    events: list[UnitEvent] = []

    @property
    def unreadable(self) -> list[UnreadableImage]:
        return self.stats.unreadable


def rejected_jsonl(rejected: Sequence[RejectedAttempt]) -> str:
    ordered = sorted(rejected, key=lambda r: (r.key, r.attempt))
    return "".join(r.model_dump_json() + "\n" for r in ordered)


def write_shard_files(store: Store, shard: int, samples: Sequence[dict], rejected: Sequence[RejectedAttempt],
                      stats: ShardStats, events: Sequence[UnitEvent] = ()) -> ShardReceipt:
    """Write one built shard into ``store``; idempotent, since the same shard always gives the same bytes.

    Sidecars first, shard last: the shard's existence marks the whole shard as done."""
    store.write_text(paths.rejected_name(shard), rejected_jsonl(rejected))
    store.write_text(paths.shard_stats_name(shard), stats.model_dump_json(indent=2) + "\n")
    written = write_shard_to(store, shard, samples)
    return ShardReceipt(shard=shard, name=paths.shard_name(shard), samples=len(samples), rejected=len(rejected),
                        sha256=written.sha256, bytes=written.bytes, stats=stats, events=list(events))
