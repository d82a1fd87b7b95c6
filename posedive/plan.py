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
from typing import Callable, Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import PlanError
from .recipe import Recipe
from .seed_draws import Draw, Integers, Uniform, draw_each
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
_ROUND_DIGITS = 4
_ROUND_SCALE = 10.0**_ROUND_DIGITS


def _restorer(model: type[BaseModel], fields_set: set[str]) -> Callable[[dict], BaseModel]:
    """Builds a ``model`` from a dict of all its fields, made right here (so not validated): the four
    slots ``model_construct`` sets, set directly. A plan makes millions, and this costs half of what
    ``model_construct`` does (which looks up defaults and aliases for every field)."""
    new, set_slot = object.__new__, object.__setattr__

    def restore(values: dict) -> BaseModel:
        instance = new(model)
        set_slot(instance, "__dict__", values)
        set_slot(instance, "__pydantic_fields_set__", fields_set)
        set_slot(instance, "__pydantic_extra__", None)
        set_slot(instance, "__pydantic_private__", None)
        return instance

    return restore


def attempt_draws(recipe: Recipe, reference_counts: np.ndarray, pose_count: int) -> list[Draw]:
    """What each attempt draws from ``default_rng(its seed)``, in order: its reference (one bound per
    attempt: its identity's image count), its pose, its elevation, its azimuth and its generation seed."""
    return [Integers(reference_counts), Integers(pose_count), Uniform(*recipe.viewpoint.elevation_deg),
            Uniform(*recipe.viewpoint.azimuth_deg), Integers(2**63 - 1)]


def attempt_seeds(recipe_hash: str, keys: list[str], attempts_per_unit: int) -> np.ndarray:
    """``derive_seed(recipe_hash, key, k)`` for every key and attempt ``k`` (key-major), hashed from
    copies of the shared prefix's sha256 state: the same digests, without re-hashing the prefix."""
    # derive_seed hashes json.dumps([recipe_hash, key, str(k)]): the JSON text, cut where the parts change.
    prefix = hashlib.sha256(("[" + json.dumps(recipe_hash) + ", ").encode())
    endings = [(", " + json.dumps(str(k)) + "]").encode() for k in range(attempts_per_unit)]
    digests = bytearray()
    for key in keys:
        unit = prefix.copy()
        unit.update(json.dumps(key).encode())
        for ending in endings:
            attempt = unit.copy()
            attempt.update(ending)
            digests += attempt.digest()[:8]
    return np.frombuffer(bytes(digests), dtype=">u8").astype(np.uint64) >> np.uint64(1)


def round_each(values: np.ndarray) -> list[float]:
    """``[round(v, 4) for v in values]``, exactly, without a Python ``round`` per value.

    Python rounds to the double nearest the correctly rounded decimal. Where ``v * 10**4``, computed in
    floating point, is not within 1e-6 of a half, its nearest integer ``m`` is the exact value's
    (the product's error is far below 1e-6 at these magnitudes), and ``m / 10**4``, a division of exact
    doubles, is correctly rounded too: the same double. The other values go through ``round``."""
    scaled = values * _ROUND_SCALE
    result = np.rint(scaled) / _ROUND_SCALE
    doubtful = (np.abs(scaled - np.floor(scaled) - 0.5) <= 1e-6) | ~(np.abs(scaled) < 2.0**31)
    rounded = result.tolist()
    for position in np.flatnonzero(doubtful).tolist():
        rounded[position] = round(float(values[position]), _ROUND_DIGITS)
    return rounded


def make_plan(recipe: Recipe, source: SourceIndex, pose_ids: Iterable[str]) -> Plan:
    """Every identity of the source's training split gets ``images_per_pid`` units (paper 4.1:
    for each PID, a random instance paired with a random target condition, the same number per PID).

    Attempt ``k`` of the unit ``key`` draws from ``np.random.default_rng(derive_seed(recipe hash, key,
    k))``; all attempts are drawn at once (``posedive.seed_draws``), with the values numpy gives."""
    pose_ids = sorted(pose_ids)
    if not pose_ids:
        raise PlanError("the pose bank is empty: nothing to plan")
    by_pid = source.train_by_pid()
    if not by_pid:
        raise PlanError(f"source {source.root} has no training images: nothing to plan")
    references: list[str] = []  # every identity's references, one after the other
    units: list[tuple[str, int, int, int]] = []  # key, pid, first reference, reference count
    for pid, records in by_pid.items():
        first = len(references)
        references.extend(record.relpath for record in records)
        units.extend((unit_key(pid, index), pid, first, len(records)) for index in range(recipe.images_per_pid))
    units.sort(key=lambda unit: unit[0])
    keys = [unit[0] for unit in units]
    per_unit = recipe.max_attempts_per_image
    first_reference = np.repeat(np.array([unit[2] for unit in units], dtype=np.int64), per_unit)
    reference_counts = np.repeat(np.array([unit[3] for unit in units], dtype=np.int64), per_unit)
    reference, pose, elevation, azimuth, seed = draw_each(
        attempt_seeds(recipe.hash, keys, per_unit), attempt_draws(recipe, reference_counts, len(pose_ids)))
    # Rounded so that the plan's JSON, the gallery's cache keys and the provenance agree exactly.
    attempts = zip(range(len(seed)), [references[i] for i in (first_reference + reference).tolist()],
                   [pose_ids[i] for i in pose.tolist()], round_each(elevation),
                   round_each(np.remainder(azimuth, 360.0)), seed.tolist())
    attempt = _restorer(Attempt, _ATTEMPT_FIELDS)
    drawn = [attempt({"index": position % per_unit, "reference": ref, "pose_id": pose_id, "elevation_deg": elev,
                      "azimuth_deg": azim, "seed": attempt_seed})
             for position, ref, pose_id, elev, azim, attempt_seed in attempts]
    per_shard = recipe.output.samples_per_shard
    unit = _restorer(WorkUnit, _UNIT_FIELDS)
    plan_units = [unit({"key": key, "pid": pid, "shard": position // per_shard,
                        "attempts": drawn[position * per_unit:(position + 1) * per_unit]})
                  for position, (key, pid, _, _) in enumerate(units)]
    num_shards = (len(plan_units) + per_shard - 1) // per_shard
    return Plan(recipe_hash=recipe.hash, num_shards=num_shards, units=plan_units,
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
