"""The Ray engine on a real local Ray cluster (CPU only) with the test doubles of the model stages.

Every test compares against a release built by the local engine from the same recipe: the manifest
(which holds every shard's sha256 and every sidecar's) must be byte-identical.
"""

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from doubles import PidRecordingStages, WaitingGenerator, batch_sensitive_stages, double_stages  # noqa: E402
from frame_helpers import frame_recipe  # noqa: E402
from parallel_workers import Echo, events_come_before_their_result, run  # noqa: E402
from s3_server import BUCKET, assert_same_files  # noqa: E402

from posedive import paths  # noqa: E402
from posedive.builder import StageUnavailable, build_release  # noqa: E402
from posedive.builder.ray_engine import ACTOR_NAME_PREFIX, GeneratorOfStages, RayEngine, RecipeGenerator  # noqa: E402
from posedive.parallel import LIMITED_VARIABLES, RayBackend, apply_thread_settings  # noqa: E402

TESTS = Path(__file__).parent
ROOT = TESTS.parent


@pytest.fixture(scope="module")
def cluster():
    """A local two-CPU cluster whose workers can import the test doubles."""
    pythonpath = os.pathsep.join([str(TESTS), str(ROOT)])
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_manifest(tmp_path_factory):
    recipe = frame_recipe(tmp_path_factory.mktemp("local"))
    report = build_release(recipe, stages=double_stages(), show_progress=False)
    assert report.manifest is not None and report.manifest.samples > 0
    return (recipe.release_dir / paths.MANIFEST).read_bytes()


def ray_engine(delay_s: float = 0.0, **options) -> RayEngine:
    return RayEngine(stages_factory=functools.partial(double_stages, delay_s), **options)


def manifest_of(recipe) -> bytes:
    return (recipe.release_dir / paths.MANIFEST).read_bytes()


def test_ray_build_and_ray_parts_equal_the_local_build(cluster, local_manifest, tmp_path):
    recipe = frame_recipe(tmp_path / "whole")
    report = build_release(recipe, stages=double_stages(), engine=ray_engine(), show_progress=False)
    assert sorted(report.built_shards) == [0, 1, 2, 3]
    assert manifest_of(recipe) == local_manifest

    parts = frame_recipe(tmp_path / "parts")
    second = build_release(parts, stages=double_stages(), part=(2, 2), engine=ray_engine(), show_progress=False)
    assert second.manifest is None and sorted(second.built_shards) == [1, 3]
    first = build_release(parts, stages=double_stages(), part=(1, 2), engine=ray_engine(), show_progress=False)
    assert sorted(first.built_shards) == [0, 2] and first.manifest is not None
    assert manifest_of(parts) == local_manifest


def test_a_ray_build_into_s3_gives_the_local_release(cluster, s3_endpoint, tmp_path):
    """Shard workers write the shards straight into the S3 server (the driver's fsspec configuration
    travels with the release store); the release equals the local build's and verifies."""
    from posedive.release import Release

    local = frame_recipe(tmp_path / "local")
    build_release(local, stages=double_stages(), show_progress=False)
    recipe = frame_recipe(tmp_path / "remote", output={"dir": f"s3://{BUCKET}/ray"})
    report = build_release(recipe, stages=double_stages(), engine=ray_engine(), show_progress=False)
    assert sorted(report.built_shards) == [0, 1, 2, 3] and len(report.receipts) == 4
    assert_same_files(local.release_dir, recipe.release_location)
    assert Release.open(recipe.release_location).verify() == []


def test_more_workers_than_shards_share_a_shard_in_chunks_with_the_local_bytes(cluster, tmp_path):
    """One shard of four chunks on two shard workers: both build some of it, and the release equals
    the local build's byte for byte, with a generator whose images depend on its batches."""
    chunked = {"output": {"samples_per_shard": 15, "units_per_chunk": 4}}
    local = frame_recipe(tmp_path / "local", **chunked)
    build_release(local, stages=batch_sensitive_stages(), show_progress=False)
    pids = tmp_path / "pids"
    pids.mkdir()
    recipe = frame_recipe(tmp_path / "ray", **chunked)
    engine = RayEngine(stages_factory=PidRecordingStages(pids), shard_workers=2, generator_num_cpus=0)
    report = build_release(recipe, stages=batch_sensitive_stages(), engine=engine, show_progress=False)
    assert report.plan.num_shards == 1 and report.plan.chunk_count() == 4
    assert len(list(pids.iterdir())) == 2  # both workers rendered for the one shard
    assert manifest_of(recipe) == manifest_of(local)


class BackgroundBuild:
    """``build_release`` in a thread, so that a test can kill parts of the cluster while it runs."""

    def __init__(self, recipe, engine) -> None:
        self.outcome: dict = {}
        self.thread = threading.Thread(target=self._run, args=(recipe, engine))
        self.thread.start()

    def _run(self, recipe, engine) -> None:
        try:
            self.outcome["report"] = build_release(recipe, stages=double_stages(), engine=engine, show_progress=False)
        except BaseException as error:  # surfaced by report()
            self.outcome["error"] = error

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def join(self) -> None:
        self.thread.join(timeout=180)

    def report(self):
        """The build's report once it has finished without an error."""
        assert not self.thread.is_alive() and "error" not in self.outcome, self.outcome.get("error")
        return self.outcome["report"]


def test_killed_generation_actor_is_restarted_and_the_release_is_identical(cluster, local_manifest, tmp_path):
    recipe = frame_recipe(tmp_path)
    build = BackgroundBuild(recipe, ray_engine(delay_s=0.1))
    try:
        first_shard = recipe.release_dir / paths.shard_name(0)
        deadline = time.time() + 120
        names: list[str] = []
        while time.time() < deadline and build.is_alive() and not (names and first_shard.exists()):
            names = [name for name in ray.util.list_named_actors() if name.startswith(ACTOR_NAME_PREFIX)]
            time.sleep(0.05)
        assert names and first_shard.exists(), "no generation actor or no shard appeared"
        actor = ray.get_actor(names[0])
        pid_before = ray.get(actor.pid.remote())
        assert not (recipe.release_dir / paths.MANIFEST).exists(), "the build finished before the kill"
        ray.kill(actor, no_restart=False)
        pid_after = pid_before
        while pid_after == pid_before and time.time() < deadline:  # the actor comes back in a new process
            pid_after = ray.get(actor.pid.remote(), timeout=60)
            time.sleep(0.05)
        assert pid_after != pid_before
    finally:
        build.join()
    report = build.report()
    assert sorted(report.built_shards) == [0, 1, 2, 3]  # every shard once, none lost
    assert first_shard.exists() and not list(recipe.release_dir.rglob("*.tmp-*"))
    assert manifest_of(recipe) == local_manifest


class RecordingStages:
    """Test-double stages that leave the pid of each process that makes them in ``folder``."""

    def __init__(self, folder: Path, delay_s: float):
        self.folder, self.delay_s = folder, delay_s

    def __call__(self):
        (self.folder / f"worker-{os.getpid()}").touch()
        return double_stages(self.delay_s)


def test_killed_shard_worker_is_restarted_and_the_release_is_identical(cluster, local_manifest, tmp_path):
    recipe = frame_recipe(tmp_path)
    pids = tmp_path / "pids"
    pids.mkdir()
    engine = RayEngine(stages_factory=RecordingStages(pids, 0.0),
                       generator_factory=GeneratorOfStages(functools.partial(double_stages, 0.2)))
    build = BackgroundBuild(recipe, engine)
    try:
        first_shard = recipe.release_dir / paths.shard_name(0)
        deadline = time.time() + 120
        while time.time() < deadline and build.is_alive() and not first_shard.exists():
            time.sleep(0.05)
        workers = sorted(pids.iterdir())
        assert first_shard.exists() and len(workers) == 1
        assert not (recipe.release_dir / paths.MANIFEST).exists(), "the build finished before the kill"
        os.kill(int(workers[0].name.split("-")[1]), signal.SIGKILL)  # a process of this test's cluster
    finally:
        build.join()
    report = build.report()
    assert len(list(pids.iterdir())) == 2  # Ray restarted the worker
    assert sorted(report.built_shards) == [0, 1, 2, 3]
    assert manifest_of(recipe) == local_manifest


DRIVER_SCRIPT = textwrap.dedent("""
    import functools, sys
    from pathlib import Path
    sys.path[:0] = [{tests!r}, {root!r}]
    import ray
    from doubles import double_stages
    from frame_helpers import frame_recipe
    from posedive.builder import build_release
    from posedive.builder.ray_engine import RayEngine
    ray.init(address={address!r}, runtime_env={{"env_vars": {{"PYTHONPATH": {pythonpath!r}}}}})
    engine = RayEngine(stages_factory=functools.partial(double_stages, 0.6), shard_workers=1)
    build_release(frame_recipe(Path({folder!r})), stages=double_stages(), engine=engine, show_progress=False)
""")


def test_driver_killed_mid_build_resumes_from_completed_shards(cluster, local_manifest, tmp_path):
    script = DRIVER_SCRIPT.format(tests=str(TESTS), root=str(ROOT), address=cluster, folder=str(tmp_path),
                                  pythonpath=os.pathsep.join([str(TESTS), str(ROOT)]))
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    release_dir = frame_recipe(tmp_path).release_dir
    deadline = time.time() + 150
    while time.time() < deadline and driver.poll() is None and not any(release_dir.glob("*/*.tar")):
        time.sleep(0.05)
    assert any(release_dir.glob("*/*.tar")), "the driver never completed a shard"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    done = [shard for shard in range(4) if paths.shard_path(release_dir, shard).exists()]
    assert not (release_dir / paths.MANIFEST).exists() and len(done) < 4

    resumed_recipe = frame_recipe(tmp_path)
    resumed = build_release(resumed_recipe, stages=double_stages(), engine=ray_engine(), show_progress=False)
    assert set(done) <= set(resumed.skipped_shards)
    assert sorted(resumed.skipped_shards + resumed.built_shards) == [0, 1, 2, 3]
    assert not list(resumed_recipe.release_dir.rglob("*.tmp-*"))
    assert manifest_of(resumed_recipe) == local_manifest


def test_a_real_cpu_generator_gives_the_same_pixels_in_ray_workers(cluster, tmp_path):
    """Ray gives each actor its own OMP_NUM_THREADS; the workers take the driver's thread settings
    instead, so the tiny diffusion generator's CPU numerics match a local build bit for bit."""
    pytest.importorskip("diffusers")
    from doubles import DoubleEstimator, DoubleRenderer
    from generation_tiny import make_pipeline

    from posedive.builder import BuildStages
    from posedive.builder.stages import load_generator

    weights = tmp_path / "tiny-generator"
    make_pipeline(seed=0).save_pretrained(weights)
    overrides = {"generator": {"weights": str(weights), "steps": 2}, "filter": {"tau_gen": 0.0, "eps_gen": 1.0}}
    local = frame_recipe(tmp_path / "local", **overrides)
    stages = BuildStages(conditions=DoubleRenderer(), estimator=DoubleEstimator(), generator=load_generator(local))
    assert build_release(local, stages=stages, show_progress=False).manifest.samples > 0

    remote = frame_recipe(tmp_path / "ray", **overrides)
    engine = RayEngine(stages_factory=double_stages, generator_factory=RecipeGenerator(remote))
    build_release(remote, stages=double_stages(), engine=engine, show_progress=False)
    assert manifest_of(remote) == manifest_of(local)


def test_a_recipes_reid_encoder_gives_the_local_manifest_in_ray_shard_workers(cluster, tmp_path):
    """The Re-ID features are computed where the shard is built, on one CPU thread: the same numbers in a
    Ray shard worker (threads as reserved) as in a local build."""
    pytest.importorskip("diffusers")
    from doubles import StagesWithRecipeReid

    from posedive.generation.identity import TransReIDViT, convert_transreid
    from posedive.generation.state_dicts import read_state_dict

    state = read_state_dict(TESTS / "fixtures" / "upstream" / "transreid" / "transformer_20.pth")
    convert_transreid(state, {"num_heads": 2}).build(TransReIDViT).save_pretrained(tmp_path / "transreid")
    overrides = {"quality": {"reid_encoder": str(tmp_path / "transreid")}}
    local = frame_recipe(tmp_path / "local", **overrides)
    build_release(local, stages=StagesWithRecipeReid(local)(), show_progress=False)
    assert local.release_dir.joinpath(paths.MANIFEST).read_text().count("transreid from") >= 1
    remote = frame_recipe(tmp_path / "ray", **overrides)
    engine = RayEngine(stages_factory=StagesWithRecipeReid(remote))
    build_release(remote, stages=double_stages(), engine=engine, show_progress=False)
    assert manifest_of(remote) == manifest_of(local)


def test_each_worker_runs_as_many_threads_as_the_cpus_it_reserves(cluster, tmp_path, monkeypatch):
    """The driver's own thread settings do not leak into the actors: a shard worker (1 CPU) and a
    generation actor (``generator_num_cpus``) each run their reservation's threads."""
    from doubles import generator_checking_threads, stages_checking_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the driver's: workers must not take it
    engine = RayEngine(stages_factory=functools.partial(stages_checking_threads, 1), shard_workers=1,
                       generator_factory=functools.partial(generator_checking_threads, 1), generator_num_cpus=1.0,
                       actor_restarts=0)
    recipe = frame_recipe(tmp_path)
    assert build_release(recipe, stages=double_stages(), engine=engine, show_progress=False).manifest.samples > 0


def test_thread_settings_follow_the_driver(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    apply_thread_settings({"OMP_NUM_THREADS": None, "MKL_NUM_THREADS": "2"})
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "2"


def missing_generator():
    raise StageUnavailable("the generation stage cannot be loaded: no weights here")


def test_a_generator_that_cannot_load_stops_the_build_with_its_reason(cluster, tmp_path):
    engine = RayEngine(stages_factory=double_stages, generator_factory=missing_generator, actor_restarts=0)
    with pytest.raises(StageUnavailable, match="no weights here"):
        build_release(frame_recipe(tmp_path), stages=double_stages(), engine=engine, show_progress=False)
    assert not list(frame_recipe(tmp_path).release_dir.glob("data/*.tar"))


def test_each_work_unit_reaches_the_driver_while_its_shard_is_built(cluster, tmp_path):
    """The generation actor makes its second batch only once the driver has seen a progress event
    (``WaitingGenerator``): events travel from the shard worker as they happen, not with the shard."""
    from posedive.plan import make_plan
    from posedive.sources import read_source

    recipe = frame_recipe(tmp_path, generator={"batch_size": 1})
    flag = tmp_path / "event-seen"
    source = read_source(recipe.source, recipe.base_dir)
    plan = make_plan(recipe, source, double_stages().conditions.pose_ids())
    events = []

    def on_event(event) -> None:
        events.append(event)
        flag.touch()

    engine = RayEngine(stages_factory=double_stages, shard_workers=1,
                       generator_factory=functools.partial(WaitingGenerator, flag, timeout_s=30))
    (result,) = engine.build_shards(recipe, source, plan, [0], on_event)
    assert result.shard == 0 and events == result.events
    assert sorted(e.key for e in events if e.outcome != "rejected") == sorted(u.key for u in plan.shard_units(0))


def test_the_ray_backend_maps_like_the_local_ones(cluster):
    items = [f"i{k}" for k in range(6)]
    results, seen = run(RayBackend(2), items)
    assert [r["item"] for r in results] == items
    assert len({r["pid"] for r in results}) <= 2 and all(r["built"] == 1 for r in results)
    assert all(r["environment"] == {name: "1" for name in LIMITED_VARIABLES} for r in results)
    assert events_come_before_their_result(seen, items)
    with pytest.raises(ValueError, match="item fail cannot be done"):
        list(RayBackend(1).map(Echo, ["a", "fail"]))


class InProcessServices:
    """The calls a ``RayServiceClient`` makes, answered by one ``GenerationService`` in this process."""

    def __init__(self, service) -> None:
        self.service = service

    def call(self, method: str, *args):
        return getattr(self.service, method)(*args)


def test_a_remote_generator_offers_identity_features_exactly_when_the_hosted_one_does():
    from doubles import DoubleGenerator
    from PIL import Image
    from test_release_quality import NoIdentityGenerator

    from posedive.builder.ray_engine import GenerationService, remote_generator
    from posedive.schema import IdentityFeatures

    images = [Image.new("RGB", (16, 32), (10 * k, 200 - 10 * k, 90)) for k in range(3)]
    for hosted in (DoubleGenerator, NoIdentityGenerator):
        services = InProcessServices(GenerationService(hosted))
        encoder = services.call("identity_encoder")
        remote = remote_generator(services, hosted().info, encoder)
        if hosted is NoIdentityGenerator:
            assert encoder is None and not isinstance(remote, IdentityFeatures)
            continue
        assert encoder == "pixels-double" and isinstance(remote, IdentityFeatures)
        assert remote.identity_encoder == "pixels-double"
        assert (remote.identity_features(images) == DoubleGenerator().identity_features(images)).all()
