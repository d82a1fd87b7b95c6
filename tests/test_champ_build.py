"""A build with a converted Champ generator, end to end on CPU: the upstream-layout Champ fixture
converted, the recipe's conditions rendered for Champ's contract (its depth, normal, semantic map and
DWPose skeleton), generated through the four guidance encoders, and the release storing the semantic
map beside posedive's maps with every sample's provenance naming the contract."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from doubles import DoubleEstimator
from test_conditions_smpl import write_smpl_model

from posedive.builder import BuildStages, build_release
from posedive.builder.stages import contract_forms, load_conditions, load_generator
from posedive.conditions.posebank import PoseBank
from posedive.conditions.render import CHAMP_PART_COLOURS
from posedive.generation.families.champ import CHAMP
from posedive.generation.families.convert import convert_generator
from posedive.generation.training_config import WeightsSource
from posedive.recipe import parse_recipe
from posedive.release import Release

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "upstream" / "champ"

pytestmark = pytest.mark.slow  # a whole build at Champ's 512x512


@pytest.fixture(scope="module")
def champ_release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("champ-build")
    base = FIXTURE / "base"
    convert_generator("champ", FIXTURE / "pretrained_models" / "champ", tmp / "champ-generator",
                      unet_config=WeightsSource(path=str(base), subfolder="unet"),
                      vae=WeightsSource(path=str(base), subfolder="vae"),
                      image_encoder=WeightsSource(path=str(base), subfolder="image_encoder"))
    write_smpl_model(tmp, half_size=0.05)
    # two identities of real crops, one image each: enough to run every stage, small enough for CPU
    crops = sorted((REPO / "tests" / "fixtures" / "vtest_market" / "bounding_box_train").glob("*.jpg"))
    for crop in (crops[0], crops[-1]):
        (tmp / "people" / crop.name[:4]).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(crop, tmp / "people" / crop.name[:4] / crop.name)
    rng = np.random.default_rng(0)
    poses = 0.1 * rng.standard_normal((3, 72)) * (np.arange(72) >= 3)  # near the rest pose, upright
    PoseBank.from_arrays(poses, ["a", "b", "c"], ["test"] * 3, ["a", "b", "c"], [0, 0, 0], ["test"] * 3).save(
        tmp / "bank.npz")
    width, height = CHAMP.contract.resolution
    recipe = parse_recipe(
        {
            "name": "champ-test",
            "version": "1.0.0",
            "source": {"format": "folder", "root": "people"},
            "poses": {"source": "bank.npz"},
            "body": {"model": "smpl", "smpl_model_dir": str(tmp)},
            "images_per_pid": 1,
            "max_attempts_per_image": 1,
            "filter": {"tau_ref": 0.0, "tau_tar": 0.0, "eps_gen": 1.0, "tau_gen": 0.0},
            "generator": {"weights": str(tmp / "champ-generator"), "family": "champ", "steps": 2,
                          "batch_size": 4, "width": width, "height": height},
            "output": {"dir": str(tmp / "releases"), "samples_per_shard": 16,
                       "condition_maps": ["depth", "normal", "skeleton", "semantic_map"]},
        },
        base_dir=tmp,
    )
    assert contract_forms(recipe) == ("depth_champ", "semantic_map")  # read from the converted folder's contract
    stages = BuildStages(conditions=load_conditions(recipe), estimator=DoubleEstimator(),
                         generator=load_generator(recipe))
    build_release(recipe, stages=stages, show_progress=False)
    return Release.open(tmp / "releases" / "champ-test" / "1.0.0")


def test_a_champ_build_stores_the_semantic_map_and_names_the_contract(champ_release):
    assert champ_release.verify() == []
    manifest = champ_release.manifest
    assert manifest.samples == 2 and manifest.condition_maps == ["depth", "normal", "skeleton", "semantic_map"]
    palette = set(CHAMP_PART_COLOURS) | {(0, 0, 0)}
    for sample in champ_release.iter_samples():
        semantic = np.array(sample["semantic_map"].convert("RGB"))
        depth = np.array(sample["depth"])
        assert semantic.shape[:2] == depth.shape[:2] == (512, 512)
        assert {tuple(int(v) for v in c) for c in np.unique(semantic.reshape(-1, 3), axis=0)} <= palette
        assert semantic.any(axis=-1).sum() > 0.9 * (depth > 0).sum()  # the body's silhouette, in part colours
        generator = sample["provenance"]["generator"]
        assert generator["family"] == "champ"
        assert generator["condition_maps"] == ["depth/champ", "normal/champ", "semantic_map/champ-parts",
                                               "skeleton/dwpose-rgb"]
        assert "champ family" in generator["conditions"]
