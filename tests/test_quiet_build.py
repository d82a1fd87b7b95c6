"""What a person sees while a real build runs: posedive's own lines, not the libraries' chatter.

A real demo build (anny and Warp, pyrender, MediaPipe, the demo generator) of three identities of the
vtest crops runs in a subprocess, as a user runs it, with fd 1 and fd 2 captured whole: native code
writes there below anything Python can intercept."""

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from posedive import paths

REPO = Path(__file__).resolve().parents[1]
CROPS = REPO / "tests" / "fixtures" / "vtest_market"
IDENTITIES = ("0001", "0002", "0003")
DEMO = yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text())
FINISHED = f"release {DEMO['name']} {DEMO['version']} finished"

# What the libraries printed before: TF-Lite, absl/glog (MediaPipe), Warp's banner and driver probe,
# diffusers' and transformers' loading bars, INFO lines of datasets and anny.
CHATTER = {
    "tf-lite": r"Created TensorFlow Lite XNNPACK delegate",
    "absl": r"absl::InitializeLog",
    "glog": r"(?m)^[IW]\d{4} \d\d:\d\d:",
    "warp banner": r"Warp \d+\.\d+\.\d+ initialized",
    "warp driver": r"Warp CUDA warning",
    "warp modules": r"Module anny\.\S+ \w+ load on device",
    "diffusers bar": r"Loading pipeline components",
    "transformers bar": r"Loading weights",
    "datasets": r"INFO datasets",
    "anny": r"INFO anny",
}


def chatter_in(output: str) -> list[str]:
    return [name for name, pattern in CHATTER.items() if re.search(pattern, output)]


def small_demo(tmp_path: Path, name: str) -> Path:
    """The demo recipe on three identities, one image each, written under ``tmp_path``."""
    source = tmp_path / "market"
    for split in ("bounding_box_train", "bounding_box_test", "query"):
        (source / split).mkdir(parents=True, exist_ok=True)
        for crop in sorted((CROPS / split).glob("*.jpg")):
            if crop.name.split("_")[0] in IDENTITIES:
                shutil.copy(crop, source / split / crop.name)
    recipe = copy.deepcopy(DEMO)
    recipe["source"]["root"] = str(source)
    recipe["generator"]["weights"] = str(REPO / "models" / "demo-generator")
    recipe["images_per_pid"] = 1
    recipe["output"]["dir"] = str(tmp_path / name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def build(recipe: Path, cache: Path, *options: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("POSEDIVE_")}
    env.update(POSEDIVE_CACHE_DIR=str(cache), PYTHONPATH=str(REPO))
    for variable in ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel", "HF_HUB_DISABLE_PROGRESS_BARS",
                     "DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        env.pop(variable, None)  # as a user's shell has them: unset
    result = subprocess.run([sys.executable, "-m", "posedive.cli", *options, "build", str(recipe)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A cache without conditions, so the build loads anny (and Warp); the built-in pose bank is
    copied in when this machine has built it, only to save rebuilding it."""
    cache = tmp_path_factory.mktemp("cache")
    banks = paths.cache_dir() / paths.POSEBANK_CACHE
    if banks.is_dir():
        shutil.copytree(banks, cache / paths.POSEBANK_CACHE)
    return cache


@pytest.fixture(scope="module")
def quiet_output(tmp_path_factory, cache) -> str:
    tmp = tmp_path_factory.mktemp("quiet")
    return build(small_demo(tmp, "releases"), cache)


def test_a_build_shows_only_posedives_own_lines(quiet_output):
    assert chatter_in(quiet_output) == [], quiet_output[-4000:]
    assert "building" in quiet_output and "3/3" in quiet_output  # the progress bar, to its end
    assert FINISHED in quiet_output and "samples" in quiet_output


def test_verbose_shows_the_libraries_again(tmp_path, cache, quiet_output):
    output = build(small_demo(tmp_path, "verbose-releases"), cache, "--verbose")
    shown = chatter_in(output)
    assert {"tf-lite", "glog", "diffusers bar"} <= set(shown), output[-4000:]
    assert FINISHED in output
