"""Fine-tuning a released family on its own condition contract: training pairs that hold every map any
family reads, ``posedive pairs --family`` drawing them (here from the stored fits of the committed
``vtest_pairs``, which ``posedive pairs`` made from vtest.avi), ``train-generator --init-from`` a converted
Moore-AnimateAnyone and Champ on those pairs with their contracts as converted, and the error that names
the shard and the missing map when pairs were written for another family."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from generation_tiny import HEIGHT, WIDTH, make_pairs, one_torch_thread, random_image, training_config
from typer.testing import CliRunner

from posedive.cli import app
from posedive.conditions.render import CHAMP_PART_COLOURS, OPENPOSE_COLOURS
from posedive.generation.contract import EXTRA_FORMS, POSEDIVE_CONTRACT, extra_forms
from posedive.generation.data import PAIR_FORMS, PairsIndex, PairWriter, TrainingPair, iter_pairs, write_pairs
from posedive.generation.families import FAMILIES, family_contract

REPO = Path(__file__).resolve().parents[1]
VTEST_PAIRS = REPO / "tests" / "fixtures" / "vtest_pairs"
# what each family's pairs hold beyond posedive's own maps
FAMILY_FORMS = {"animate-anyone": {"skeleton_dwpose"}, "champ": {"depth_champ", "semantic_map", "skeleton_dwpose"}}

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


def _members(shard_dir: Path) -> dict[str, dict[str, bytes]]:
    index = PairsIndex(shard_dir)
    return {index[i].key: index.members(i) for i in range(len(index))}


@pytest.fixture(scope="module")
def source_pairs(tmp_path_factory) -> Path:
    """Three of the committed pairs (made by ``posedive pairs`` on vtest.avi; each stores its target's fit)."""
    folder = tmp_path_factory.mktemp("vtest-three")
    index = PairsIndex(VTEST_PAIRS)
    with PairWriter(folder) as writer:
        for i in range(3):
            members = index.members(i)
            writer.write(index[i], keep={name: members[name] for name in ("reference.jpg", "target.jpg")})
    return folder


@pytest.fixture(scope="module")
def drawn(source_pairs, tmp_path_factory) -> dict[str, Path]:
    """``posedive pairs PAIRS --out DIR --family FAMILY`` for Moore-AnimateAnyone and Champ."""
    root = tmp_path_factory.mktemp("drawn")
    folders = {}
    for family in FAMILY_FORMS:
        result = CliRunner().invoke(app, ["pairs", str(source_pairs), "--out", str(root / family), "--family", family])
        assert result.exit_code == 0, result.output
        assert f"drawn for the {family} family" in " ".join(result.output.split())
        folders[family] = root / family
    return folders


# ------------------------------------------------------------------------------------------- the format
def test_pairs_hold_every_map_any_family_reads_and_old_shards_still_load(tmp_path):
    every_read = {(m.form.source or m.name) for contract in [POSEDIVE_CONTRACT, *(f.contract for f in FAMILIES.values())]
                  for m in contract.maps}
    assert every_read - {"depth", "normal", "skeleton"} == set(PAIR_FORMS) == set(EXTRA_FORMS)
    rng = np.random.default_rng(0)
    image = lambda *shape: rng.integers(0, 256, shape, dtype=np.uint8)  # noqa: E731
    contract = family_contract("champ")
    pair = TrainingPair(key="p0", reference=image(40, 20, 3), target=image(32, 16, 3), depth=image(32, 16),
                        normal=image(32, 16, 3), skeleton=image(32, 16, 3), pid="0",
                        forms={name: image(32, 16, 3) for name in PAIR_FORMS}, contract=contract)
    write_pairs([pair], tmp_path)
    (read,) = iter_pairs(tmp_path)
    assert sorted(read.forms) == sorted(PAIR_FORMS) and read.contract == contract
    assert all(np.array_equal(read.forms[name], pair.forms[name]) for name in PAIR_FORMS)
    assert sorted(_members(tmp_path)["p0"]) == sorted(["reference.jpg", "target.jpg", "depth.png", "normal.png",
                                                       "skeleton.png", "json", *(f"{n}.png" for n in PAIR_FORMS)])
    old = list(iter_pairs(VTEST_PAIRS))  # written before pairs held forms or a contract
    assert len(old) == 20 and all(p.forms == {} and p.contract is None for p in old)


# --------------------------------------------------------------------------------- posedive pairs --family
def test_a_fitted_body_gets_the_maps_the_conditions_stage_draws(tmp_path):
    """A pair's target maps come from the code the build's conditions stage draws with: the same body and
    camera give the same pixels, every family's forms included."""
    from posedive.conditions.fitted import FitRenderer
    from posedive.conditions.posebank import PoseBank
    from posedive.conditions.renderer import BodyConditionRenderer, RendererSpec
    from posedive.fitting.result import FitResult
    from posedive.generation.condition_forms import condition_maps, contract_forms
    from posedive.schema import ConditionRequest

    pose = 0.15 * np.random.default_rng(3).standard_normal(72) * (np.arange(72) >= 3)
    PoseBank.from_arrays(pose[None], ["walk"], ["test"], ["walk"], [0], ["test"]).save(tmp_path / "bank.npz")
    champ = family_contract("champ")
    spec = RendererSpec(bank_path=tmp_path / "bank.npz", width=48, height=96, forms=("depth_champ", "semantic_map"))
    with BodyConditionRenderer(spec) as stage:
        (conditions,) = stage.render([ConditionRequest(pose_id="walk", elevation_deg=10.0, azimuth_deg=40.0)])
        body = stage.body
    fit = FitResult(model=body.name, pose=list(conditions.body.pose), orientation=[0.0, 0.0, 0.0],
                    camera=conditions.camera, error_2d_px=0.0, error_3d_mm=0.0, visible=18, success=True)
    with FitRenderer(body) as renderer:
        (fitted,) = renderer.render([fit], forms=spec.forms)
    for name in ("depth", "normal", "skeleton"):
        assert np.array_equal(getattr(fitted, name), getattr(conditions, name)), name
    assert sorted(fitted.forms) == sorted(conditions.forms)
    for name, array in conditions.forms.items():
        assert np.array_equal(fitted.forms[name], array), name
    generation = condition_maps(conditions, champ)
    pair = contract_forms(champ, keypoints_2d=fitted.keypoints_2d, size=(48, 96), rendered=fitted.forms, where="pair")
    assert sorted(pair) == sorted(EXTRA_FORMS)
    for name, array in pair.items():
        assert np.array_equal(generation[name], array), name


def test_pairs_family_draws_the_maps_its_contract_reads_from_the_stored_fits(source_pairs, drawn):
    before = {p.key: p for p in iter_pairs(source_pairs)}
    raw_before = _members(source_pairs)
    palette = {tuple(c) for c in CHAMP_PART_COLOURS} | {(0, 0, 0)}
    dwpose_colours = {tuple(int(v) for v in c) for c in OPENPOSE_COLOURS} | {
        tuple(int(v * 0.6) for v in c) for c in OPENPOSE_COLOURS} | {(0, 0, 0)}
    for family, folder in drawn.items():
        raw_after = _members(folder)
        pairs = list(iter_pairs(folder))
        assert [p.key for p in pairs] == list(before)
        for pair in pairs:
            old = before[pair.key]
            # the same people: images copied byte for byte, posedive's maps drawn again identically from the fit
            for name in ("reference.jpg", "target.jpg"):
                assert raw_after[pair.key][name] == raw_before[pair.key][name]
            for name in ("depth", "normal", "skeleton"):
                assert np.array_equal(getattr(pair, name), getattr(old, name)), (family, name)
            assert set(pair.forms) == FAMILY_FORMS[family] and pair.contract == family_contract(family)
            assert set(extra_forms(pair.contract)) == set(pair.forms)
            skeleton = pair.forms["skeleton_dwpose"]
            assert skeleton.any() and not np.array_equal(skeleton, pair.skeleton)  # DWPose's drawing, not OpenPose's
            assert {tuple(int(v) for v in c) for c in np.unique(skeleton.reshape(-1, 3), axis=0)} <= dwpose_colours
            if family == "champ":
                body = pair.depth > 0
                semantic = pair.forms["semantic_map"]
                assert {tuple(int(v) for v in c) for c in np.unique(semantic.reshape(-1, 3), axis=0)} <= palette
                assert semantic.any(axis=-1).sum() > 0.9 * body.sum()
                depth = pair.forms["depth_champ"]
                assert np.array_equal(depth[..., 0], depth[..., 2]) and depth[body].max() == 255
                assert not depth[~body].any() and depth[body].min() < 10  # farthest surface near 0, unlike near-bright


def test_pairs_family_refuses_an_unknown_family_and_a_folder_that_holds_pairs(source_pairs, tmp_path):
    result = CliRunner().invoke(app, ["pairs", str(source_pairs), "--out", str(tmp_path / "x"), "--family", "dall-e"])
    assert result.exit_code == 2 and "--family" in result.output and "champ" in result.output
    result = CliRunner().invoke(app, ["pairs", str(source_pairs), "--out", str(source_pairs), "--family", "champ"])
    assert result.exit_code == 2 and "already holds" in result.output


# ---------------------------------------------------------------------------- train-generator --init-from
def _write_config(pairs: Path, tmp_path: Path) -> Path:
    config = json.loads(training_config(pairs, tmp_path / "stage2", max_steps=2, batch_size=3, log_every=1,
                                        data=dict(pairs=[str(pairs)], width=WIDTH, height=HEIGHT,
                                                  reference_drop_prob=0.0)).model_dump_json())
    path = tmp_path / "stage2.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _guider_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "pose_guider" / "diffusion_pytorch_model.safetensors"))


@pytest.mark.parametrize("family", sorted(FAMILY_FORMS))
def test_init_from_a_converted_release_trains_on_pairs_drawn_for_its_family(family, drawn, tmp_path):
    from test_generation_conversion import CASES

    from posedive.generation import PoseDivePipeline, load_generator, read_contract
    from posedive.generation.checkpoint import METADATA_FILE
    from posedive.generation.pipeline import conditions_to_tensor
    from posedive.recipe import GeneratorConfig
    from posedive.schema import GenerationRequest

    released = tmp_path / family
    CASES[family].convert(released)
    contract = read_contract(released)
    assert contract == family_contract(family)  # as converted: no encoding rewritten
    result = CliRunner().invoke(app, ["train-generator", str(_write_config(drawn[family], tmp_path)),
                                      "--init-from", str(released)])
    assert result.exit_code == 0, result.output
    trained = tmp_path / "stage2" / "generator"
    outcome = json.loads((trained / METADATA_FILE).read_text())["training"]["result"]
    assert outcome["steps"] == 2
    assert all(np.isfinite(outcome[k]) for k in ("loss_first", "loss_last", "eval_loss_before", "eval_loss_after"))
    assert read_contract(trained).model_dump(exclude={"resolution"}) == contract.model_dump(exclude={"resolution"})
    # every pose guider learnt from the pairs' maps: each moved from the converted weights
    before, after = _guider_weights(released), _guider_weights(trained)
    guiders = {key.split(".")[1] for key in before} if contract.guiders == "per_map" else {""}
    for guider in guiders:
        keys = [k for k in before if contract.guiders != "per_map" or k.split(".")[1] == guider]
        assert max(float((after[k].double() - before[k].double()).abs().max()) for k in keys) > 0, guider
    # the training tensors are the generation tensors: the pairs' maps through the contract
    pair = next(iter_pairs(drawn[family]))
    tensor = conditions_to_tensor([pair.maps()], HEIGHT, WIDTH, contract)
    assert tensor.shape == (1, contract.channels, HEIGHT, WIDTH)
    # the trained folder loads and generates with conditions in its contract
    generator = load_generator(GeneratorConfig(weights=str(trained), family=family, steps=2, width=WIDTH,
                                               height=HEIGHT), tmp_path)
    conditions = _conditions_of(pair)
    images = generator.generate([GenerationRequest(reference=random_image(0), conditions=conditions, seed=0)])
    assert [image.size for image in images] == [(WIDTH, HEIGHT)]
    assert PoseDivePipeline.from_pretrained(trained).pose_guider.contract.family == family
    # and a recipe of its family, at the size it was trained at, validates against it
    from test_released_generators_cli import write_recipe

    recipe = write_recipe(tmp_path / "recipe", family, trained, {"width": WIDTH, "height": HEIGHT})
    checked = CliRunner().invoke(app, ["validate", str(recipe)])
    assert checked.exit_code == 0, checked.output
    assert f"{family} family" in " ".join(checked.output.split())


def _conditions_of(pair: TrainingPair):
    """A condition set holding a drawn pair's maps (its on-request forms too), as the conditions stage gives them."""
    from generation_tiny import condition_set

    base = condition_set(0)
    height, width = pair.depth.shape
    camera = base.camera.model_copy(update={"width": width, "height": height})
    forms = {k: v for k, v in pair.forms.items() if k != "skeleton_dwpose"}  # drawn from keypoints, not stored
    return replace(base, condition_id="drawn", depth=pair.depth, normal=pair.normal, skeleton=pair.skeleton,
                   camera=camera, forms=forms)


def test_training_refuses_pairs_without_a_map_the_contract_reads(tmp_path):
    from test_generation_conversion import CASES

    pairs = tmp_path / "plain"
    make_pairs(pairs, 2)  # posedive's maps only: no DWPose skeleton
    released = tmp_path / "animate-anyone"
    CASES["animate-anyone"].convert(released)
    result = CliRunner().invoke(app, ["train-generator", str(_write_config(pairs, tmp_path)),
                                      "--init-from", str(released)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert "pairs-000000.tar" in output and "pair-000" in output and "'skeleton_dwpose'" in output
    assert "skeleton/dwpose-rgb" in output and "posedive pairs" in output and "--family animate-anyone" in output
    assert not (tmp_path / "stage2" / "generator").exists()
