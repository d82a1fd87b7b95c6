"""A shard built in chunks (``output.units_per_chunk``): the plan's chunks, each written by its worker
into the release's build state, the shard assembled from their files equal to the shard built whole,
and a killed build that keeps the chunks it finished."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
from doubles import DoubleRenderer, SeedRecordingGenerator, batch_sensitive_stages, double_stages
from frame_helpers import frame_recipe

from posedive import paths
from posedive.builder import build_release
from posedive.builder.chunk_store import ChunkReceipt, ChunkStore
from posedive.builder.chunks import ChunkAssembler, merge_chunks
from posedive.builder.engine import ShardWorker
from posedive.builder.receipt import rejected_jsonl, write_shard_files
from posedive.builder.shard_job import BuildContext, ShardBuilder, ShardResult, ShardWork
from posedive.plan import make_plan
from posedive.recipe import parse_recipe
from posedive.release import ShardStats, StageTotals
from posedive.shards import inspect_shard
from posedive.sources import read_source
from posedive.storage import open_store

TESTS = Path(__file__).parent


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
        merged = merge_chunks(parts)
        assert [sample["__key__"] for sample in merged.samples] == sorted(s["__key__"] for s in whole.samples)
        assert merged.samples == whole.samples
        assert rejected_jsonl(merged.rejected) == rejected_jsonl(whole.rejected)
        assert merged.stats == whole.stats
        assert sorted(map(repr, merged.events)) == sorted(map(repr, whole.events))
        rejected += len(whole.rejected)
    assert rejected  # the recipe's dark identity makes rejections to merge


def _chunk_store(tmp_path, recipe, plan, name="release"):
    return ChunkStore(open_store(tmp_path / name), recipe.hash, plan.hash)


def test_chunk_receipts_in_any_order_assemble_each_shard_from_its_files_as_the_whole_shard(tmp_path):
    """Each chunk is written into the build state; a shard is assembled from its chunks' files once the
    last arrives, with the bytes of the shard written whole, and only then are its chunk files deleted."""
    recipe = frame_recipe(tmp_path)
    source = read_source(recipe.source, recipe.base_dir)
    plan = plan_for(recipe)
    builder = ShardBuilder(BuildContext(recipe=recipe, source=source, stages=double_stages(), plan_hash=plan.hash))
    chunks = _chunk_store(tmp_path, recipe, plan)
    whole = open_store(tmp_path / "whole")
    receipts = []
    for shard in (0, 1):
        units = plan.shard_units(shard)
        parts = [(units[:1], builder.build(shard, units[:1])), (units[1:], builder.build(shard, units[1:]))]
        receipts += [chunks.write(shard, index, 2, chunk_units, part) for index, (chunk_units, part) in enumerate(parts)]
        merged = merge_chunks([part for _, part in parts])
        write_shard_files(whole, shard, merged.samples, merged.rejected, merged.stats)
    assert all(chunks.store.is_file(relpath) for relpath in paths.chunk_files(1, 1))
    assembler = ChunkAssembler(chunks)
    arrivals = [assembler.add(receipt) for receipt in (receipts[3], receipts[0], receipts[2], receipts[1])]
    assert [None if a is None else a.shard for a in arrivals] == [None, None, 1, 0]
    for shard, receipt in ((1, arrivals[2]), (0, arrivals[3])):
        for relpath in paths.shard_files(shard):
            assert chunks.store.read_bytes(relpath) == whole.read_bytes(relpath), relpath
        assert receipt.sha256 == whole.sha256(paths.shard_name(shard))
        assert receipt.samples == inspect_shard(whole.file(paths.shard_name(shard))).scan.samples
    assert chunks.store.listdir(paths.CHUNKS_DIR) == []


def test_a_worker_writes_its_chunk_where_the_release_lives_and_returns_only_a_receipt(tmp_path):
    recipe = frame_recipe(tmp_path, generator={"width": 96, "height": 192})
    source = read_source(recipe.source, recipe.base_dir)
    plan = plan_for(recipe)
    chunks = _chunk_store(tmp_path, recipe, plan)
    worker = ShardWorker(BuildContext(recipe=recipe, source=source, stages=double_stages(), plan_hash=plan.hash),
                         chunks)
    units = plan.shard_units(0)
    receipt = worker(ShardWork(shard=0, units=units[2:], chunk=1, chunks=2), lambda event: None)
    assert isinstance(receipt, ChunkReceipt)
    rejected, samples, written = paths.chunk_files(0, 1)
    assert ChunkReceipt.model_validate_json(chunks.store.read_bytes(written)) == receipt
    assert chunks.store.sha256(samples) == receipt.sha256
    assert receipt.samples == receipt.stats.totals.accepted == inspect_shard(chunks.store.file(samples)).scan.samples
    assert receipt.samples and receipt.unit_keys == [unit.key for unit in units[2:]]
    assert len(receipt.model_dump_json()) < receipt.bytes / 10  # what travels back is no image
    assert not chunks.store.exists(paths.shard_name(0))


def test_assembling_a_shard_streams_its_chunks_and_holds_no_sample(tmp_path):
    """Peak memory while a 16 MB shard of 1 MB samples is assembled from eight chunks stays below one
    sample's size, and the shard reads back as all the chunks' samples in order."""
    recipe = frame_recipe(tmp_path)
    plan = plan_for(recipe)
    chunks = _chunk_store(tmp_path, recipe, plan)
    sample_bytes = 1 << 20
    rng = np.random.default_rng(0)
    receipts = []
    for chunk in range(8):
        samples = [{"__key__": f"s{chunk}{index}", "jpg": rng.bytes(sample_bytes), "json": b"{}"} for index in range(2)]
        stats = ShardStats(shard=0, totals=StageTotals(work_units=2, accepted=2))
        receipts.append(chunks.write(0, chunk, 8, [], ShardResult(samples=samples, rejected=[], stats=stats)))
        del samples
    tracemalloc.start()
    try:
        receipt = chunks.assemble(receipts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert receipt.samples == 16 and receipt.bytes > 16 * sample_bytes
    contents = inspect_shard(chunks.store.file(paths.shard_name(0)))
    assert list(contents.fields) == [f"s{chunk}{index}" for chunk in range(8) for index in range(2)]
    assert peak < sample_bytes, f"assembly peaked at {peak / 2**20:.1f} MiB"


KILLED_BUILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from doubles import double_stages
    from frame_helpers import frame_recipe
    from posedive.builder import build_release
    build_release(frame_recipe(Path({root!r}), output={{"units_per_chunk": 1}}), stages=double_stages(delay_s=0.4),
                  show_progress=False)
""")


def test_a_killed_chunked_build_resumes_keeping_its_finished_chunks(tmp_path):
    """A build killed with chunks finished but their shard not: the restarted build generates nothing
    for the chunks it keeps, moves a damaged one aside and builds it again, and gives the same release."""
    chunked = {"output": {"units_per_chunk": 1}}
    reference = frame_recipe(tmp_path / "whole", **chunked)
    build_release(reference, stages=double_stages(), show_progress=False)

    process = subprocess.Popen([sys.executable, "-c", KILLED_BUILD.format(tests=str(TESTS), root=str(tmp_path))])
    recipe = frame_recipe(tmp_path, **chunked)
    chunk_dir = recipe.release_dir / paths.CHUNKS_DIR
    deadline = time.time() + 120
    while len(list(chunk_dir.glob("*.json"))) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted(chunk_dir.glob("*.json"))
    assert len(finished) >= 2, "the build never finished two chunks"
    assert not (recipe.release_dir / paths.shard_name(0)).exists()
    kept = [ChunkReceipt.model_validate_json(path.read_bytes()) for path in finished]
    damaged = kept[0]
    samples = recipe.release_dir / paths.chunk_files(damaged.shard, damaged.chunk)[1]
    damaged_bytes = bytearray(samples.read_bytes())
    damaged_bytes[600] ^= 0xFF
    samples.write_bytes(bytes(damaged_bytes))

    stages = double_stages()
    stages.generator = SeedRecordingGenerator()
    resumed = build_release(frame_recipe(tmp_path, **chunked), stages=stages, show_progress=False)
    assert resumed.manifest is not None
    for relpath in (paths.MANIFEST, *[name for shard in range(4) for name in paths.shard_files(shard)]):
        assert (recipe.release_dir / relpath).read_bytes() == (reference.release_dir / relpath).read_bytes(), relpath
    plan = resumed.plan

    def seeds(receipt):
        (unit,) = plan.shard_chunks(receipt.shard)[receipt.chunk]
        return {attempt.seed for attempt in unit.attempts}

    generated = set(stages.generator.seeds)
    assert all(not seeds(receipt) & generated for receipt in kept[1:]), "a finished chunk was generated again"
    assert seeds(damaged) & generated
    units_built = sum(len(plan.shard_units(shard)) for shard in range(4)) - (len(kept) - 1)
    assert len({seed for seed in generated}) >= units_built
    moved = recipe.release_dir / paths.rejected_chunk_name(paths.chunk_files(damaged.shard, damaged.chunk)[1], "damaged")
    assert moved.read_bytes() == bytes(damaged_bytes)
    assert list(chunk_dir.iterdir()) == [] and not list(recipe.release_dir.rglob("*.tmp-*"))


def test_a_chunked_build_is_the_same_release_every_time(tmp_path):
    """Built twice (the second time resuming nothing), a chunked recipe gives the same manifest."""
    first = frame_recipe(tmp_path / "first", output={"units_per_chunk": 3})
    second = frame_recipe(tmp_path / "second", output={"units_per_chunk": 3})
    build_release(first, stages=batch_sensitive_stages(), show_progress=False)
    build_release(second, stages=batch_sensitive_stages(), show_progress=False)
    manifest = (first.release_dir / paths.MANIFEST).read_bytes()
    assert manifest == (second.release_dir / paths.MANIFEST).read_bytes()


def test_a_chunk_is_kept_only_if_its_receipt_and_files_match_the_plan(tmp_path):
    recipe = frame_recipe(tmp_path, output={"units_per_chunk": 2})
    source = read_source(recipe.source, recipe.base_dir)
    plan = plan_for(recipe)
    chunks = _chunk_store(tmp_path, recipe, plan)
    units = plan.shard_chunks(0)[0]
    result = ShardBuilder(BuildContext(recipe=recipe, source=source, stages=double_stages(),
                                       plan_hash=plan.hash)).build(0, units)
    receipt = chunks.write(0, 0, 2, units, result)
    rejected, samples, written = paths.chunk_files(0, 0)
    assert chunks.check(0, 0, units).receipt == receipt
    assert chunks.check(0, 1, plan.shard_chunks(0)[1]).reason is None  # not built: nothing to move
    assert ChunkStore(chunks.store, recipe.hash, "other").check(0, 0, units).reason == "other-plan"
    assert chunks.check(0, 0, units[:1]).reason == "other-plan"
    chunks.store.write_text(rejected, chunks.store.read_bytes(rejected).decode() + "{}\n")
    assert chunks.check(0, 0, units).reason == "damaged"
    assert chunks.kept(plan, [0]) == {}
    assert chunks.store.listdir(paths.CHUNKS_DIR) == []
    moved = sorted(chunks.store.listdir(paths.REJECTED_CHUNKS_DIR))
    assert moved == sorted(f"{name.rsplit('/', 1)[-1]}.damaged" for name in (rejected, samples, written))
    chunks.store.write_text(written, "{not json")
    assert chunks.check(0, 0, units).reason == "unreadable"
