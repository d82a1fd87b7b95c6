"""The plan's attempts are drawn for all seeds at once, and every value is numpy's own.

The plan format was defined by drawing each attempt from ``np.random.default_rng(derive_seed(recipe
hash, key, k))`` one at a time; releases and resumed builds depend on those bytes. ``per_attempt_plan``
below is that path, kept here as the reference the vectorised plan must equal byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posedive.plan import Attempt, WorkUnit, attempt_seeds, derive_seed, make_plan, round_each, unit_key
from posedive.recipe import load_recipe, parse_recipe
from posedive.seed_draws import Integers, Uniform, _draw_vectorised, draw_each, draw_one
from posedive.sources import read_source

ROOT = Path(__file__).resolve().parent.parent


def per_attempt_plan(recipe, source, pose_ids) -> str:
    """The plan's JSONL as the one-generator-per-attempt path makes it."""
    pose_ids = sorted(pose_ids)
    elevation, azimuth = recipe.viewpoint.elevation_deg, recipe.viewpoint.azimuth_deg
    units = []
    for pid, records in source.train_by_pid().items():
        references = [record.relpath for record in records]
        for index in range(recipe.images_per_pid):
            key = unit_key(pid, index)
            attempts = []
            for k in range(recipe.max_attempts_per_image):
                rng = np.random.default_rng(derive_seed(recipe.hash, key, k))
                attempts.append(Attempt(
                    index=k, reference=references[int(rng.integers(len(references)))],
                    pose_id=pose_ids[int(rng.integers(len(pose_ids)))],
                    elevation_deg=round(float(rng.uniform(*elevation)), 4),
                    azimuth_deg=round(float(rng.uniform(*azimuth)) % 360.0, 4),
                    seed=int(rng.integers(0, 2**63 - 1))))
            units.append((key, pid, attempts))
    units.sort(key=lambda unit: unit[0])
    per_shard = recipe.output.samples_per_shard
    return "".join(WorkUnit(key=key, pid=pid, shard=position // per_shard, attempts=attempts).model_dump_json() + "\n"
                   for position, (key, pid, attempts) in enumerate(units))


def assert_same_plan(plan, expected: str) -> None:
    """The plan's JSONL is ``expected``; on a difference, the first differing unit is shown (not a diff of
    megabytes of text)."""
    lines, expected_lines = plan.to_jsonl().splitlines(), expected.splitlines()
    first = next((i for i, (a, b) in enumerate(zip(lines, expected_lines)) if a != b), None)
    assert first is None, f"unit {first} differs:\n{lines[first]}\n{expected_lines[first]}"
    assert len(lines) == len(expected_lines) and plan.to_jsonl() == expected


def random_seeds(rng: np.random.Generator, count: int) -> np.ndarray:
    seeds = rng.integers(0, 2**63, count, dtype=np.uint64)
    seeds[: count // 8] >>= rng.integers(0, 64, count // 8).astype(np.uint64)  # short seeds: one word, zero
    seeds[:6] = [0, 1, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1]
    return seeds


# Range sizes next to powers of two (Lemire's rejections are likeliest just above 2**31 and 2**63),
# one value (nothing drawn), the full 32-bit range (numpy's unbuffered branch) and huge ranges.
EDGE_HIGHS = [1, 2, 3, 5, 7, 8, 9, 255, 256, 257, 2**16 - 1, 2**16, 2**16 + 1, 2**31 - 1, 2**31, 2**31 + 1,
              3 * 2**30, 2**32 - 1, 2**32, 2**32 + 1, 2**33 + 7, 2**62 + 1, 2**63 - 2, 2**63 - 1]


def test_draws_equal_numpy_for_many_seeds_and_ranges():
    rng = np.random.default_rng(19)
    count = 200_000
    seeds = random_seeds(rng, count)
    highs = np.where(rng.random(count) < 0.5, rng.choice(EDGE_HIGHS, count), rng.integers(1, 5000, count))
    draws = [Integers(highs), Integers(3), Uniform(-90.0, 90.0), Uniform(-360.0, 720.0), Integers(2**63 - 1),
             Integers(1), Integers(2**31 + 1, low=7), Uniform(0.0, 0.0)]
    values = [array.tolist() for array in draw_each(seeds, draws)]
    for lane in range(count):
        lane_draws = [Integers(int(highs[lane])), *draws[1:]]
        assert [column[lane] for column in values] == draw_one(int(seeds[lane]), lane_draws), lane
    # numpy's rare branches were met, and drawn by numpy itself
    _, exact = _draw_vectorised(seeds, [Integers(highs), *draws[1:]])
    assert 0 < (~exact).sum() < count // 2


def test_a_lane_numpy_rejects_is_drawn_by_numpy():
    seeds = random_seeds(np.random.default_rng(3), 4000)
    draws = [Integers(2**31 + 1), Integers(2**63 - 1)]  # about one 32-bit draw in two is rejected
    _, exact = _draw_vectorised(seeds, draws)
    rejected = np.flatnonzero(~exact)
    assert len(rejected) > 1000
    values = draw_each(seeds, draws)
    for lane in rejected.tolist():
        assert [int(values[0][lane]), int(values[1][lane])] == draw_one(int(seeds[lane]), draws)


def test_bad_ranges_raise_as_numpy_does():
    with pytest.raises(ValueError, match="high"):
        draw_each(np.array([5], dtype=np.uint64), [Integers(0)])
    with pytest.raises(ValueError, match="high - low"):
        draw_each(np.array([5], dtype=np.uint64), [Uniform(2.0, 1.0)])
    with pytest.raises(OverflowError):
        draw_each(np.array([5], dtype=np.uint64), [Uniform(-1e308, 1e308)])


def test_attempt_seeds_are_derive_seed():
    keys = [unit_key(pid, index) for pid in (0, 1, 42, 999_999, 1_234_567) for index in range(17)]
    recipe_hash = "0f" * 32
    seeds = attempt_seeds(recipe_hash, keys, 5).tolist()
    assert seeds == [derive_seed(recipe_hash, key, k) for key in keys for k in range(5)]


def test_round_each_is_python_round():
    rng = np.random.default_rng(4)
    values = np.concatenate([
        rng.uniform(-90, 90, 100_000), rng.uniform(-360, 720, 100_000),
        (np.arange(-20_000, 20_000) + 0.5) / 1e4,  # halves, as near as doubles get
        np.array([0.03125, -0.03125, 0.00005, 359.99995, 0.0, -0.0, -1e-7, 1e-300, 12.34565, 2.0**40 + 0.5]),
    ])
    rounded = round_each(values)
    expected = [round(value, 4) for value in values.tolist()]
    assert [value.hex() for value in rounded] == [value.hex() for value in expected]  # -0.0 too


def empty_market(root, pids_and_counts: dict[int, int], rng) -> None:
    """A Market-layout tree of empty files: planning reads names only."""
    for folder in ("bounding_box_train", "query", "bounding_box_test"):
        (root / folder).mkdir(parents=True)
    for pid, count in pids_and_counts.items():
        for index in range(count):
            (root / "bounding_box_train" / f"{pid:04d}_c{int(rng.integers(1, 7))}s1_{index:06d}_00.jpg").touch()
    (root / "query" / "0001_c1s1_000001_00.jpg").touch()


def test_demo_plan_equals_the_per_attempt_plan():
    recipe = load_recipe(ROOT / "recipes" / "demo.yaml")
    source = read_source(recipe.source, recipe.base_dir)
    for pose_ids in ([f"pose-{i:04d}" for i in range(737)], ["only"], ["a", "b"]):
        plan = make_plan(recipe, source, pose_ids)
        assert_same_plan(plan, per_attempt_plan(recipe, source, pose_ids))


@pytest.mark.parametrize("case", range(4))
def test_random_plans_equal_the_per_attempt_plan(tmp_path, case):
    rng = np.random.default_rng(100 + case)
    pids = rng.choice(np.arange(1, 3000), int(rng.integers(3, 12)), replace=False).tolist()
    if case == 3:
        pids.append(1_000_123)  # a pid wider than the key's six digits sorts by its text
    counts = {pid: int(rng.choice([1, 1, 2, 3, 17, 64])) for pid in pids}
    empty_market(tmp_path / "market", counts, rng)
    low = float(rng.uniform(-90, 60))
    azimuth_low = float(rng.uniform(-360, 300))
    recipe = parse_recipe({
        "name": "random-plan", "version": "1.0.0", "seed": int(rng.integers(0, 1000)),
        "source": {"format": "market1501", "root": "market"},
        "viewpoint": {"elevation_deg": [low, float(rng.uniform(low, 90))],
                      "azimuth_deg": [azimuth_low, float(rng.uniform(azimuth_low, 720))]},
        "images_per_pid": int(rng.integers(1, 20)), "max_attempts_per_image": int(rng.integers(1, 6)),
        "generator": {"weights": "unused"}, "output": {"samples_per_shard": int(rng.integers(1, 50))},
    }, base_dir=tmp_path)
    source = read_source(recipe.source, recipe.base_dir)
    pose_ids = [f"clip{i:03d}/{i * 7 % 101:05d}" for i in range(int(rng.choice([1, 2, 3, 500, 1024, 1025])))]
    plan = make_plan(recipe, source, pose_ids)
    assert_same_plan(plan, per_attempt_plan(recipe, source, pose_ids))


def test_planned_models_are_the_validated_models(tmp_path):
    """Units and attempts are built without validation: they must be what validating their JSON gives."""
    recipe = load_recipe(ROOT / "recipes" / "demo.yaml")
    plan = make_plan(recipe, read_source(recipe.source, recipe.base_dir), ["a", "b", "c"])
    for unit, line in zip(plan.units, plan.to_jsonl().splitlines(), strict=True):
        validated = WorkUnit.model_validate_json(line)
        assert unit == validated and unit.model_fields_set == validated.model_fields_set
        assert unit.attempts[0].model_copy(update={"seed": 3}).seed == 3 and unit.attempts[0].seed != 3
        with pytest.raises(Exception, match="frozen"):
            unit.attempts[0].seed = 3
