"""``posedive.parallel``: one way to map work over workers, in this process or in spawned processes
(the Ray backend is tested on a Ray cluster in test_ray_engine.py), and the pools that run on it."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import parallel_workers
import pytest
from parallel_workers import Echo, events_come_before_their_result, run

from posedive.parallel import LIMITED_VARIABLES, InProcess, LocalProcesses, RemoteTraceback, ThreadLimits, WorkerDied

FIXTURE_MARKET = Path(__file__).parent / "fixtures" / "vtest_market"


def test_in_process_builds_one_worker_and_streams_events_before_each_result():
    items = [f"i{k}" for k in range(5)]
    before = Echo.built
    results, seen = run(InProcess(), items)
    assert [r["item"] for r in results] == items and Echo.built == before + 1
    assert {r["pid"] for r in results} == {os.getpid()}
    assert events_come_before_their_result(seen, items)


def test_local_processes_are_spawned_built_once_and_stream_events(monkeypatch):
    monkeypatch.setattr(parallel_workers, "STATE", "changed by the parent")
    items = [f"i{k}" for k in range(12)]
    results, seen = run(LocalProcesses(2, prefetch=2), items)
    assert [r["item"] for r in results] == items  # in item order
    pids = {r["pid"] for r in results}
    assert len(pids) <= 2 and os.getpid() not in pids
    assert all(r["built"] == 1 for r in results)  # each worker was built once, however many items it did
    assert all(r["state"] == "fresh" for r in results)  # spawned: nothing of the parent's memory is forked
    assert events_come_before_their_result(seen, items)

    unordered, _ = run(LocalProcesses(2), items, ordered=False)
    assert sorted(r["item"] for r in unordered) == sorted(items)


def test_workers_run_as_many_threads_as_the_cpus_they_reserve(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    factory = functools.partial(Echo, import_torch=True)
    (one,), _ = run(LocalProcesses(1, cpus_per_worker=1), ["a"], factory)
    assert one["environment"] == {name: "1" for name in LIMITED_VARIABLES} and one["torch_threads"] == 1
    (two,), _ = run(LocalProcesses(1, cpus_per_worker=2.5), ["a"], factory)
    assert set(two["environment"].values()) == {"2"} and two["torch_threads"] == 2
    # The caller's own settings, for CPU work whose last bits must match the caller's.
    (same,), _ = run(LocalProcesses(1, threads=ThreadLimits.of_this_process()), ["a"])
    assert same["environment"]["OMP_NUM_THREADS"] == "7" and same["environment"]["MKL_NUM_THREADS"] is None


def test_a_failing_item_raises_its_error_with_the_workers_traceback():
    with pytest.raises(ValueError, match="item fail cannot be done") as caught:
        list(LocalProcesses(2).map(Echo, ["a", "fail", "b"]))
    assert isinstance(caught.value.__cause__, RemoteTraceback) and "parallel_workers.py" in str(caught.value.__cause__)
    with pytest.raises(ValueError, match="item fail cannot be done"):
        list(InProcess().map(Echo, ["fail"]))


def test_a_worker_that_dies_stops_the_map():
    with pytest.raises(WorkerDied, match="exit code 3"):
        list(LocalProcesses(1).map(Echo, ["a", "die", "b"]))


def test_items_are_pulled_only_as_they_are_sent():
    pulled: list[str] = []

    def items():
        for k in range(10):
            pulled.append(f"i{k}")
            yield f"i{k}"

    ahead = [len(pulled) - taken for taken, _ in enumerate(LocalProcesses(1, prefetch=3).map(Echo, items()), 1)]
    assert len(ahead) == 10 and max(ahead) <= 3


@pytest.mark.skipif(not (FIXTURE_MARKET / "READY").is_file(), reason="real crops fixture not written yet")
def test_pose_analysis_in_worker_processes_equals_this_process():
    from posedive.analysis.images import ImageItem, analyse_items

    paths = sorted((FIXTURE_MARKET / "bounding_box_train").glob("*.jpg"))[:6]
    items = [ImageItem(key=p.name, camera="c1", location=p) for p in paths]
    here = analyse_items(items, workers=1, chunk_size=2, orientation="landmarks")
    spread = analyse_items(items, workers=2, chunk_size=2, orientation="landmarks")
    assert spread == here and sum(r.person_found for r in here) >= 4


def test_gallery_rendered_in_worker_processes_equals_this_process(tmp_path, monkeypatch):
    from frame_helpers import frame_recipe

    from posedive.conditions.gallery import gallery_requests, load_gallery, render_gallery
    from posedive.conditions.renderer import BodyConditionRenderer, renderer_spec

    recipe = frame_recipe(tmp_path)
    renders = {}
    for workers in (1, 2):
        spec = renderer_spec(recipe, cache_root=tmp_path / f"cache-{workers}")
        try:
            requests = gallery_requests(recipe, 2, BodyConditionRenderer(spec).pose_ids())
            ids = render_gallery(spec, requests, workers=workers, chunk_size=1, progress=False)
        except ImportError as error:  # the conditions stage's optional rendering stack
            pytest.skip(f"cannot render conditions here: {error}")
        assert len(sorted((tmp_path / f"cache-{workers}" / "conditions").rglob("*.npz"))) == len(set(ids))
        renders[workers] = load_gallery(spec, requests)  # from the cache: nothing is rendered again
    for one, two in zip(renders[1], renders[2]):
        assert one.condition_id == two.condition_id
        for name in ("depth", "normal", "skeleton"):
            np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
