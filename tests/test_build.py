import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from doubles import DoubleEstimator, DoubleRenderer, WaitingGenerator, double_stages
from frame_helpers import frame_recipe

from posedive import paths
from posedive.builder import BuildStages, LocalEngine, build_release
from posedive.release import Release, ReleaseError

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("build")
    recipe = frame_recipe(tmp_path)
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    return recipe, report


def test_release_layout_and_manifest(built):
    recipe, report = built
    manifest = report.manifest
    root = recipe.release_dir
    assert root == report.release_dir and (root / paths.MANIFEST).is_file()
    assert [s.path for s in manifest.shards] == [paths.shard_name(i) for i in range(4)]
    assert manifest.samples == manifest.totals.accepted > 0
    totals = manifest.totals
    assert totals.work_units == 15
    assert totals.accepted + totals.short_units == 15
    assert totals.attempts == totals.reference_rejected + totals.target_rejected + totals.generated_rejected + totals.accepted
    assert totals.reference_rejected > 0 and totals.generated_rejected > 0  # dark references, dark generations
    assert Release.open(root).verify() == []
    assert 0 < manifest.viewpoint_entropy <= 1
    for relpath in (paths.CARD, paths.RECIPE, "plots/viewpoints.png", "plots/poses.png", "plots/samples.png"):
        assert relpath in manifest.files


def test_contact_sheet_shows_one_sample_per_identity_spread_over_the_release(built):
    from PIL import Image

    from posedive.release.plots import shown_samples
    from posedive.shards import iter_provenance

    recipe, report = built
    records = list(iter_provenance(recipe.release_dir / s.path for s in report.manifest.shards))
    pids = list(dict.fromkeys(r["source"]["pid"] for r in records))
    shown = shown_samples(records)
    assert [r["source"]["pid"] for r in shown] == pids[: len(shown)] or len(pids) > 8
    assert len(shown) == min(8, len(pids)) and len({r["source"]["pid"] for r in shown}) == len(shown)
    for record in shown:  # the first sample of its identity
        assert record is next(r for r in records if r["source"]["pid"] == record["source"]["pid"])
    few = shown_samples(records, count=2)
    assert [r["source"]["pid"] for r in few] == [pids[0], pids[-1]]
    sheet = Image.open(recipe.release_dir / "plots/samples.png")
    assert sheet.size[1] > sheet.size[0]  # rows of reference, depth, normal, skeleton, generated
    card = (recipe.release_dir / paths.CARD).read_text()
    assert "## Samples" in card and "![plots/samples.png](plots/samples.png)" in card


PLACEHOLDER_SENTENCE = "replace `<org>/frame-test` by the repo this release was pushed to"


def test_card_without_hub_repo_keeps_the_placeholder_and_says_so(built):
    recipe, _ = built
    assert recipe.output.hub_repo is None
    card = (recipe.release_dir / paths.CARD).read_text()
    assert 'load_dataset("<org>/frame-test", revision="v1.0.0", split="train")' in card
    assert card.count(PLACEHOLDER_SENTENCE) == 1


def test_card_names_the_recipes_hub_repo_in_its_loading_code(built):
    from posedive.release.card import render_card

    recipe, report = built
    published = recipe.model_copy(update={"output": recipe.output.model_copy(update={"hub_repo": "my-lab/frames"})})
    card = render_card(published, report.manifest, [])
    assert 'load_dataset("my-lab/frames", revision="v1.0.0", split="train")' in card
    assert 'load_dataset("my-lab/frames", revision="v1.0.0", split="train", streaming=True)' in card
    assert "<org>" not in card and PLACEHOLDER_SENTENCE not in card
    explicit = render_card(published, report.manifest, [], repo_id="other-lab/frames")
    assert 'load_dataset("other-lab/frames"' in explicit and "my-lab/frames" not in explicit


def test_every_sample_has_the_same_fields_and_full_provenance(built):
    recipe, report = built
    release = Release.open(recipe.release_dir)
    samples = list(release.iter_samples())
    assert len(samples) == report.manifest.samples
    units = {u.key: u for u in report.plan.units}
    for sample in samples:
        assert set(sample) == {"key", "image", "provenance", "depth", "normal", "skeleton"}
        prov = sample["provenance"]
        attempt = units[sample["key"]].attempts[prov["attempt"]]
        assert prov["source"]["image"] == attempt.reference and prov["seed"] == attempt.seed
        assert prov["camera"]["azimuth_deg"] == attempt.azimuth_deg
        assert prov["body"]["pose_id"] == attempt.pose_id and len(prov["body"]["pose"]) == 72
        assert prov["recipe_hash"] == recipe.hash
        assert prov["generator"]["id"] == "tests/double-generator"
        assert all(prov["filter"][stage]["kept"] for stage in ("reference", "target", "generated"))
        assert prov["filter"]["reference"]["score"] >= recipe.filter.tau_ref
        assert sample["image"].size == (32, 64)


def test_rejected_attempts_are_logged_with_scores(built):
    recipe, report = built
    lines = []
    for shard in range(report.plan.num_shards):
        lines += (recipe.release_dir / paths.rejected_name(shard)).read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    totals = report.manifest.totals
    assert len(entries) == totals.reference_rejected + totals.target_rejected + totals.generated_rejected
    reference = [e for e in entries if e["stage"] == "reference"]
    assert reference and all(e["pid"] == 7 and e["scores"]["min_confidence"] < 0.6 for e in reference)
    assert all("tau_" in e["reason"] or "eps_gen" in e["reason"] for e in entries)


def test_datasets_and_webdataset_read_the_release(built):
    import datasets
    import webdataset as wds

    recipe, report = built
    root = recipe.release_dir
    expected = {s["key"]: s["provenance"] for s in Release.open(root).iter_samples(decode=False)}
    ds = datasets.load_dataset(str(root), split="train", cache_dir=str(root.parent / "hf-cache"))
    assert len(ds) == len(expected)
    row = ds[0]
    assert row["jpg"].size == (32, 64)
    assert row["json"]["source"] == expected[row["__key__"]]["source"]
    assert row["json"]["seed"] == expected[row["__key__"]]["seed"]
    assert row["json"]["camera"]["K"][2] == [0.0, 0.0, 1.0]
    streamed = list(datasets.load_dataset(str(root), split="train", streaming=True))
    assert sorted(r["__key__"] for r in streamed) == sorted(expected)
    plain = list(wds.WebDataset([str(p) for p in Release.open(root).shard_paths()], shardshuffle=False).decode("pil"))
    assert sorted(s["__key__"] for s in plain) == sorted(expected)
    assert plain[0]["json"]["key"] == plain[0]["__key__"]


def test_finished_release_is_immutable(built):
    recipe, report = built
    again = build_release(recipe, stages=double_stages(), show_progress=False)
    assert again.already_complete and again.manifest == report.manifest
    changed = frame_recipe(recipe.base_dir, seed=99)
    with pytest.raises(ReleaseError, match="immutable"):
        build_release(changed, stages=double_stages(), show_progress=False)


def test_parts_built_separately_give_the_same_release(built, tmp_path):
    recipe, report = built
    part_recipe = frame_recipe(tmp_path)
    first = build_release(part_recipe, stages=double_stages(), part=(2, 2), show_progress=False)
    assert first.manifest is None and first.missing_shards == [0, 2]
    second = build_release(part_recipe, stages=double_stages(), part=(1, 2), show_progress=False)
    assert second.manifest is not None
    assert (part_recipe.release_dir / paths.MANIFEST).read_bytes() == (recipe.release_dir / paths.MANIFEST).read_bytes()


BUILD_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from doubles import double_stages
    from frame_helpers import frame_recipe
    from posedive.builder import build_release
    from pathlib import Path
    build_release(frame_recipe(Path({root!r})), stages=double_stages(delay_s={delay}), show_progress=False)
""")


def test_sigkill_then_resume_gives_the_same_manifest(built, tmp_path):
    recipe, report = built
    script = BUILD_SCRIPT.format(tests=str(TESTS), root=str(tmp_path), delay=0.15)
    process = subprocess.Popen([sys.executable, "-c", script])
    first_shard = frame_recipe(tmp_path).release_dir / paths.shard_name(0)
    deadline = time.time() + 120
    while not first_shard.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert first_shard.exists(), "the build never completed a shard"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    resumed_recipe = frame_recipe(tmp_path)
    assert not (resumed_recipe.release_dir / paths.MANIFEST).exists()
    resumed = build_release(resumed_recipe, stages=double_stages(), show_progress=False)
    assert 0 in resumed.skipped_shards
    assert not list(resumed_recipe.release_dir.rglob("*.tmp-*"))
    assert (resumed_recipe.release_dir / paths.MANIFEST).read_bytes() == (recipe.release_dir / paths.MANIFEST).read_bytes()


def test_each_shards_stats_name_the_generator_and_estimator_that_built_it(built):
    recipe, report = built
    for shard in range(report.plan.num_shards):
        stats = json.loads(paths.shard_stats_path(recipe.release_dir, shard).read_text())
        assert stats["generator"] == report.manifest.generator.model_dump(mode="json")
        assert stats["estimator"] == report.manifest.estimator == "brightness-double"


def _finish_without_models(monkeypatch, recipe):
    """Run the build that finds every shard built, as `posedive build` does (no stages given), with
    every model loader refusing: planning gets the test renderer's pose ids."""
    from posedive.builder import runner, stages

    def no_model(recipe):
        raise AssertionError("finishing the release loaded a model")

    monkeypatch.setattr(stages, "load_generator", no_model)
    monkeypatch.setattr(stages, "load_estimator", no_model)
    monkeypatch.setattr(runner, "load_conditions", lambda recipe: DoubleRenderer())
    return build_release(recipe, show_progress=False)


def test_finishing_reads_the_stages_from_the_shards_stats_and_loads_no_model(tmp_path, monkeypatch):
    """No shard holds a sample (every unit ran out of attempts), so no provenance names the stages:
    the shards' stats do, and the run that finds every shard built finishes from the files alone."""
    recipe = frame_recipe(tmp_path, filter={"tau_gen": 1.0})
    first = build_release(recipe, stages=double_stages(), show_progress=False)
    assert first.manifest.samples == 0 and first.manifest.totals.short_units == 15
    manifest = (recipe.release_dir / paths.MANIFEST).read_bytes()
    (recipe.release_dir / paths.MANIFEST).unlink()
    again = _finish_without_models(monkeypatch, recipe)
    assert again.built_shards == [] and again.manifest is not None
    assert (recipe.release_dir / paths.MANIFEST).read_bytes() == manifest


def _forget_stages_in_stats(root: Path) -> None:
    """Make the stats files look like those written before they named the stages."""
    for stats_file in sorted(root.glob(f"{paths.REJECTED_DIR}/*.stats.json")):
        stats = json.loads(stats_file.read_text())
        stats.pop("generator", None)
        stats.pop("estimator", None)
        stats_file.write_text(json.dumps(stats, indent=2) + "\n")
    (root / paths.MANIFEST).unlink()


def test_stats_that_do_not_name_the_stages_finish_from_a_samples_provenance(built, tmp_path, monkeypatch):
    recipe, report = built
    older = frame_recipe(tmp_path)
    build_release(older, stages=double_stages(), show_progress=False)
    _forget_stages_in_stats(older.release_dir)
    finished = _finish_without_models(monkeypatch, older).manifest
    assert finished.generator == report.manifest.generator and finished.estimator == report.manifest.estimator
    assert finished.shards == report.manifest.shards


def test_a_release_nothing_names_the_stages_of_is_refused_with_what_to_do(tmp_path, monkeypatch):
    recipe = frame_recipe(tmp_path, filter={"tau_gen": 1.0})
    build_release(recipe, stages=double_stages(), show_progress=False)
    _forget_stages_in_stats(recipe.release_dir)
    with pytest.raises(ReleaseError, match="name the generator and estimator") as caught:
        _finish_without_models(monkeypatch, recipe)
    assert str(recipe.release_dir) in str(caught.value) and "posedive build" in caught.value.hint


def test_the_local_engine_reports_each_work_unit_as_it_finishes(tmp_path):
    """The engine's events arrive while a shard is being built (the generator waits for the first
    one before its second batch) and are the events each shard's result lists."""
    recipe = frame_recipe(tmp_path, generator={"batch_size": 1})
    flag = tmp_path / "event-seen"
    stages = BuildStages(conditions=DoubleRenderer(), estimator=DoubleEstimator(),
                         generator=WaitingGenerator(flag, timeout_s=10))
    from posedive.plan import make_plan
    from posedive.sources import read_source

    source = read_source(recipe.source, recipe.base_dir)
    plan = make_plan(recipe, source, stages.conditions.pose_ids())
    events = []

    def on_event(event) -> None:
        events.append(event)
        flag.touch()

    results = list(LocalEngine(stages).build_shards(recipe, source, plan, [0, 1], on_event))
    assert [result.shard for result in results] == [0, 1]
    assert events == [event for result in results for event in result.events]
    finished = [event for event in events if event.outcome in ("accepted", "short")]
    assert sorted(event.key for event in finished) == sorted(u.key for s in (0, 1) for u in plan.shard_units(s))
    assert sum(event.outcome == "rejected" for event in events) == sum(r.rejected for r in results)


def test_the_engine_writes_each_shard_and_returns_only_its_receipt(tmp_path):
    """The worker writes the shard into the release location; what comes back is a small receipt whose
    hash, size and counts are those of the file written."""
    from posedive.builder.receipt import ShardReceipt
    from posedive.files import sha256_file
    from posedive.plan import make_plan
    from posedive.sources import read_source

    recipe = frame_recipe(tmp_path)
    stages = double_stages()
    source = read_source(recipe.source, recipe.base_dir)
    plan = make_plan(recipe, source, stages.conditions.pose_ids())
    receipts = list(LocalEngine(stages).build_shards(recipe, source, plan, [1], lambda event: None))
    assert [type(r) for r in receipts] == [ShardReceipt] and receipts[0].name == paths.shard_name(1)
    shard_file = paths.shard_path(recipe.release_dir, 1)
    assert receipts[0].sha256 == sha256_file(shard_file) and receipts[0].bytes == shard_file.stat().st_size
    assert receipts[0].stats.model_dump_json(indent=2) + "\n" == paths.shard_stats_path(recipe.release_dir, 1).read_text()
    assert len(receipts[0].model_dump_json()) < 20_000  # no image bytes travel back


def test_progress_counts_each_event_once():
    from posedive.builder.progress import BuildProgress, UnitEvent

    rejected = UnitEvent(shard=0, key="p2-0", outcome="rejected", attempt=0)
    with BuildProgress(2, enabled=False) as progress:
        progress.record(rejected)
        progress.record(rejected)  # sent again by a worker that was restarted
        progress.settle([rejected, UnitEvent(shard=0, key="p2-0", outcome="accepted", attempt=1),
                         UnitEvent(shard=0, key="p2-1", outcome="short")])  # the shard's result
    assert (progress.accepted, progress.rejected, progress.short) == (1, 1, 1)
