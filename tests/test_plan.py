import pytest
from doubles import DoubleRenderer
from frame_helpers import frame_recipe

from posedive.plan import KEY_PATTERN, PlanError, make_plan, parse_part, part_shards
from posedive.sources import read_source


def plan_for(recipe):
    return make_plan(recipe, read_source(recipe.source, recipe.base_dir), DoubleRenderer().pose_ids())


def test_same_recipe_same_plan(tmp_path):
    recipe = frame_recipe(tmp_path)
    first, second = plan_for(recipe), plan_for(frame_recipe(tmp_path))
    assert first.to_jsonl() == second.to_jsonl() and first.hash == second.hash
    assert plan_for(frame_recipe(tmp_path, seed=5)).hash != first.hash


def test_units_per_identity_keys_and_ranges(tmp_path):
    recipe = frame_recipe(tmp_path, viewpoint={"elevation_deg": [5, 25], "azimuth_deg": [90, 180]})
    plan = plan_for(recipe)
    assert len(plan.units) == 5 * recipe.images_per_pid
    assert len({u.key for u in plan.units}) == len(plan.units)
    assert all(KEY_PATTERN.match(u.key) and "." not in u.key for u in plan.units)
    train = read_source(recipe.source, recipe.base_dir).train_by_pid()
    for unit in plan.units:
        assert len(unit.attempts) == recipe.max_attempts_per_image
        for attempt in unit.attempts:
            assert attempt.reference in {r.relpath for r in train[unit.pid]}
            assert 5 <= attempt.elevation_deg <= 25 and 90 <= attempt.azimuth_deg <= 180
    seeds = [a.seed for u in plan.units for a in u.attempts]
    assert len(set(seeds)) == len(seeds)


def test_a_unit_does_not_depend_on_other_identities(tmp_path):
    recipe = frame_recipe(tmp_path)
    full = {u.key: u for u in plan_for(recipe).units}
    for path in sorted((tmp_path / "market" / "bounding_box_train").glob("0015_*")):
        path.unlink()
    smaller = plan_for(recipe)
    assert all(u.attempts == full[u.key].attempts for u in smaller.units)


def test_shards_and_parts_partition_the_plan(tmp_path):
    plan = plan_for(frame_recipe(tmp_path))
    assert plan.num_shards == 4  # 15 units, 4 per shard
    assert [len(plan.shard_units(s)) for s in range(plan.num_shards)] == [4, 4, 4, 3]
    parts = [part_shards(plan.num_shards, (i, 3)) for i in (1, 2, 3)]
    assert sorted(s for p in parts for s in p) == list(range(plan.num_shards))
    assert parse_part("3/8") == (3, 8)
    for bad in ("0/2", "3/2", "a/b", "1-2"):
        with pytest.raises(PlanError):
            parse_part(bad)
