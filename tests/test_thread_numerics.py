"""A release does not depend on how many threads built it (the thread policy of ``posedive.parallel``)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def _build(folder: Path, threads: int) -> tuple[int, str, str]:
    """Build the small test recipe (tiny diffusion generator on CPU) in a fresh process that runs
    ``threads`` threads, as a worker reserving that many CPUs does."""
    environment = {key: value for key, value in os.environ.items() if key not in ("MKL_CBWR", "OMP_NUM_THREADS")}
    environment["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), environment.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, str(TESTS / "thread_builds.py"), str(folder), str(threads)],
                          capture_output=True, text=True, env=environment, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r"threads=(\d+) shards=(\w+) manifest=(\w+)", done.stdout)
    assert found, done.stdout
    return int(found.group(1)), found.group(2), found.group(3)


def test_releases_are_byte_identical_with_one_and_two_threads(tmp_path):
    pytest.importorskip("diffusers")
    one = _build(tmp_path, 1)
    two = _build(tmp_path, 2)
    assert one[0] == 1 and two[0] == 2  # each build ran as many torch threads as it reserved CPUs
    assert one[1] == two[1], "the shards differ between 1 and 2 threads"
    assert one[2] == two[2], "the manifests differ between 1 and 2 threads"


def test_identity_features_do_not_depend_on_threads(tmp_path):
    """The identity similarity of each sample (provenance, the manifest's quality section) comes from
    the generator's identity encoder: its features are the same bits at 1 and 2 threads."""
    pytest.importorskip("diffusers")
    import numpy as np
    import torch
    from frame_helpers import frame_recipe
    from generation_tiny import make_pipeline
    from PIL import Image

    from posedive.builder.stages import load_generator

    weights = tmp_path / "tiny-generator"
    make_pipeline(seed=0).save_pretrained(weights)
    generator = load_generator(frame_recipe(tmp_path / "release", generator={"weights": str(weights)}))
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)) for _ in range(8)]
    threads = torch.get_num_threads()
    try:
        features = []
        for count in (1, 2):
            torch.set_num_threads(count)
            features.append(generator.identity_features(images))
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(features[0], features[1]), np.abs(features[0] - features[1]).max()


def test_numerics_are_not_asked_for_once_torch_is_loaded(monkeypatch):
    """A command run inside a process that already loaded torch (a notebook, a test runner) must not
    set ``MKL_CBWR``: it would no longer change this process, only the workers it starts, and their
    images would then differ from its own."""
    import torch  # noqa: F401

    from posedive.parallel import REPRODUCIBLE_CPU_NUMERICS, use_reproducible_cpu_numerics

    for name in REPRODUCIBLE_CPU_NUMERICS:
        monkeypatch.delenv(name, raising=False)
    use_reproducible_cpu_numerics()
    assert all(name not in os.environ for name in REPRODUCIBLE_CPU_NUMERICS)
