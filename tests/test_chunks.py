"""A shard built in chunks (``output.units_per_chunk``): the plan's chunks, and the shard assembled
from them equal to the shard built whole."""

from doubles import DoubleRenderer, batch_sensitive_stages, double_stages
from frame_helpers import frame_recipe

from posedive import paths
from posedive.builder import build_release
from posedive.builder.chunks import ShardAssembler, merge_chunks
from posedive.builder.receipt import rejected_jsonl
from posedive.builder.shard_job import BuildContext, ShardBuilder
from posedive.plan import make_plan
from posedive.recipe import parse_recipe
from posedive.sources import read_source


def plan_for(recipe):
    return make_plan(recipe, read_source(recipe.source, recipe.base_dir), DoubleRenderer().pose_ids())


def test_the_plan_splits_each_shard_into_chunks_in_key_order(tmp_path):
    plan = plan_for(frame_recipe(tmp_path, output={"units_per_chunk": 3}))
    assert plan.num_shards == 4 and [len(plan.shard_units(s)) for s in range(4)] == [4, 4, 4, 3]
    for shard in range(plan.num_shards):
        chunks = plan.shard_chunks(shard)
        assert [unit for chunk in chunks for unit in chunk] == plan.shard_units(shard)
        assert [len(chunk) for chunk in chunks] == ([3] if shard == 3 else [3, 1])
    assert plan.chunk_count() == 7 and plan.chunk_count([0, 3]) == 3
    assert plan.summary()["chunks"] == 7
    whole = plan_for(frame_recipe(tmp_path))
    assert [whole.shard_chunks(s) for s in range(4)] == [[whole.shard_units(s)] for s in range(4)]


def test_chunk_size_counts_in_the_hash_only_when_set():
    minimal = {"name": "x", "version": "1.0.0", "source": {"format": "market1501", "root": "/data"},
               "generator": {"weights": "w"}}
    base = parse_recipe(minimal)
    assert "units_per_chunk" not in base.canonical_json()  # recipes written before it keep their hash
    assert parse_recipe({**minimal, "output": {"units_per_chunk": None}}).hash == base.hash
    assert parse_recipe({**minimal, "output": {"units_per_chunk": 64}}).hash != base.hash


def test_a_shard_assembled_from_its_chunks_equals_the_shard_built_whole(tmp_path):
    """With stages whose results do not depend on their batches, building a shard's units in chunks
    and merging the chunks' results changes no byte: every sample, rejection, count and event is kept."""
    recipe = frame_recipe(tmp_path)
    source = read_source(recipe.source, recipe.base_dir)
    plan = plan_for(recipe)
    rejected = 0
    for shard in range(plan.num_shards):
        units = plan.shard_units(shard)
        whole = ShardBuilder(BuildContext(recipe=recipe, source=source, stages=double_stages(),
                                          plan_hash=plan.hash)).build(shard, units)
        builder = ShardBuilder(BuildContext(recipe=recipe, source=source, stages=double_stages(), plan_hash=plan.hash))
        parts = [builder.build(shard, units[start:start + 3]) for start in range(0, len(units), 3)]
        for index, part in enumerate(parts):
            part.chunk, part.chunks = index, len(parts)
        merged = merge_chunks(parts)
        assert [sample["__key__"] for sample in merged.samples] == sorted(s["__key__"] for s in whole.samples)
        assert merged.samples == whole.samples
        assert rejected_jsonl(merged.rejected) == rejected_jsonl(whole.rejected)
        assert merged.stats == whole.stats
        assert sorted(map(repr, merged.events)) == sorted(map(repr, whole.events))
        rejected += len(whole.rejected)
    assert rejected  # the recipe's dark identity makes rejections to merge


def test_chunks_arriving_in_any_order_give_each_shard_once_complete(tmp_path):
    recipe = frame_recipe(tmp_path)
    source = read_source(recipe.source, recipe.base_dir)
    plan = plan_for(recipe)
    builder = ShardBuilder(BuildContext(recipe=recipe, source=source, stages=double_stages(), plan_hash=plan.hash))
    results = []
    for shard in (0, 1):
        units = plan.shard_units(shard)
        for index, chunk in enumerate((units[:1], units[1:])):
            result = builder.build(shard, chunk)
            result.chunk, result.chunks = index, 2
            results.append(result)
    assembler = ShardAssembler()
    arrivals = [assembler.add(result) for result in (results[3], results[0], results[2], results[1])]
    assert [None if a is None else a.shard for a in arrivals] == [None, None, 1, 0]
    assert [s["__key__"] for s in arrivals[3].samples] == sorted(s["__key__"] for s in arrivals[3].samples)


def test_a_chunked_build_is_the_same_release_every_time(tmp_path):
    """Built twice (the second time resuming nothing), a chunked recipe gives the same manifest."""
    first = frame_recipe(tmp_path / "first", output={"units_per_chunk": 3})
    second = frame_recipe(tmp_path / "second", output={"units_per_chunk": 3})
    build_release(first, stages=batch_sensitive_stages(), show_progress=False)
    build_release(second, stages=batch_sensitive_stages(), show_progress=False)
    manifest = (first.release_dir / paths.MANIFEST).read_bytes()
    assert manifest == (second.release_dir / paths.MANIFEST).read_bytes()
