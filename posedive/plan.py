"""The build plan: a pure, deterministic function of the recipe, the source index and the pose ids.

For every training identity the plan holds ``images_per_pid`` work units. A unit owns a stable key, the
shard it lands in, and ``max_attempts_per_image`` pre-drawn attempts (reference image, pose, camera,
generation seed). The builder tries them in order until one passes the filter, so retries are part of
the plan: which attempt succeeds can change nothing but which one is recorded.

Every random draw of a unit comes from a seed derived from the recipe hash and the unit's key alone,
so a unit's content does not depend on other units, on the order of work, or on the machine; the same
recipe always gives the same plan, and any part of it can be built anywhere (``--part i/N``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import PlanError
from .recipe import Recipe
from .sources import SourceIndex

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")  # WebDataset splits keys at the first dot: no dots


class Attempt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    reference: str = Field(description="source image, relative to the source root")
    pose_id: str
    elevation_deg: float
    azimuth_deg: float
    seed: int = Field(ge=0, lt=2**63)


class WorkUnit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    pid: int
    shard: int
    attempts: list[Attempt]


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe_hash: str
    num_shards: int
    units: list[WorkUnit]
    units_per_chunk: int | None = Field(None, ge=1, description="the recipe's output.units_per_chunk; not part "
                                        "of the plan's hash, which is the hash of its units")

    def shard_units(self, shard: int) -> list[WorkUnit]:
        return [unit for unit in self.units if unit.shard == shard]

    def shard_chunks(self, shard: int) -> list[list[WorkUnit]]:
        """The shard's units in chunks of ``units_per_chunk`` (in key order; the last one may be
        shorter), each built on its own, in rounds of its own: the units a chunk holds are a function
        of the recipe alone, so a chunk's result (its generator batches included) is the same
        whichever worker builds it."""
        units = self.shard_units(shard)
        size = self.units_per_chunk or max(len(units), 1)
        return [units[start:start + size] for start in range(0, len(units), size)]

    def chunk_count(self, shards: Iterable[int] | None = None) -> int:
        """How many chunks ``shards`` (default: all) are built in."""
        per_shard = Counter(unit.shard for unit in self.units)
        wanted = per_shard if shards is None else set(shards)
        size = self.units_per_chunk
        return sum(1 if size is None else -(-per_shard[shard] // size) for shard in wanted if per_shard[shard])

    def to_jsonl(self) -> str:
        return "".join(unit.model_dump_json() + "\n" for unit in self.units)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.to_jsonl().encode()).hexdigest()

    def write(self, path: Path) -> None:
        from .files import atomic_write_bytes

        atomic_write_bytes(path, self.to_jsonl().encode())

    def summary(self) -> dict:
        pids = {unit.pid for unit in self.units}
        return {
            "recipe_hash": self.recipe_hash,
            "plan_hash": self.hash,
            "identities": len(pids),
            "work_units": len(self.units),
            "attempts_per_unit": len(self.units[0].attempts) if self.units else 0,
            "shards": self.num_shards,
            "chunks": self.chunk_count(),
        }


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (recipe hash, key, attempt), identical on every platform."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def unit_key(pid: int, index: int) -> str:
    return f"{pid:06d}-{index:03d}"


# Every attempt and unit of a plan sets all its fields: they share one fields-set object rather than
# each holding its own (a small set costs about 700 bytes: most of an attempt's memory). Pydantic copies
# it before any ``model_copy(update=...)`` changes it.
_ATTEMPT_FIELDS = set(Attempt.model_fields)
_UNIT_FIELDS = set(WorkUnit.model_fields)


def _draw_attempt(recipe: Recipe, key: str, index: int, references: list[str], pose_ids: list[str],
                  recipe_hash: str | None = None) -> Attempt:
    # A plan of a million-image source draws millions of attempts: the caller passes the recipe's hash
    # once, and the attempt is built without re-validating values made right here.
    rng = np.random.default_rng(derive_seed(recipe_hash or recipe.hash, key, index))
    elevation = recipe.viewpoint.elevation_deg
    azimuth = recipe.viewpoint.azimuth_deg
    return Attempt.model_construct(
        _fields_set=_ATTEMPT_FIELDS,
        index=index,
        reference=references[int(rng.integers(len(references)))],
        pose_id=pose_ids[int(rng.integers(len(pose_ids)))],
        # Rounded so that the plan's JSON, the gallery's cache keys and the provenance agree exactly.
        elevation_deg=round(float(rng.uniform(*elevation)), 4),
        azimuth_deg=round(float(rng.uniform(*azimuth)) % 360.0, 4),
        seed=int(rng.integers(0, 2**63 - 1)),
    )


def make_plan(recipe: Recipe, source: SourceIndex, pose_ids: Iterable[str]) -> Plan:
    """Every identity of the source's training split gets ``images_per_pid`` units (paper 4.1:
    for each PID, a random instance paired with a random target condition, the same number per PID)."""
    pose_ids = sorted(pose_ids)
    if not pose_ids:
        raise PlanError("the pose bank is empty: nothing to plan")
    by_pid = source.train_by_pid()
    if not by_pid:
        raise PlanError(f"source {source.root} has no training images: nothing to plan")
    drawn: list[tuple[str, int, list[Attempt]]] = []
    recipe_hash = recipe.hash
    for pid, records in by_pid.items():
        references = [record.relpath for record in records]
        for index in range(recipe.images_per_pid):
            key = unit_key(pid, index)
            attempts = [_draw_attempt(recipe, key, k, references, pose_ids, recipe_hash)
                        for k in range(recipe.max_attempts_per_image)]
            drawn.append((key, pid, attempts))
    drawn.sort(key=lambda unit: unit[0])
    per_shard = recipe.output.samples_per_shard
    units = [WorkUnit.model_construct(_fields_set=_UNIT_FIELDS, key=key, pid=pid, shard=position // per_shard,
                                      attempts=attempts)
             for position, (key, pid, attempts) in enumerate(drawn)]
    num_shards = (len(units) + per_shard - 1) // per_shard
    return Plan(recipe_hash=recipe.hash, num_shards=num_shards, units=units,
                units_per_chunk=recipe.output.units_per_chunk)


def parse_part(spec: str) -> tuple[int, int]:
    """``"3/8"`` -> (3, 8): the third of eight parts, 1-based as batch schedulers count."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if match is None:
        raise PlanError(f"--part must look like i/N (e.g. 3/8), got {spec!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= count:
        raise PlanError(f"--part {spec}: i must be between 1 and N")
    return index, count


def part_shards(num_shards: int, part: tuple[int, int] | None) -> list[int]:
    """Shards of one part: round-robin, so parts stay balanced when the last shard is short."""
    if part is None:
        return list(range(num_shards))
    index, count = part
    return [shard for shard in range(num_shards) if shard % count == index - 1]
