"""Released generators converted from the upstream-made fixtures (tests/fixtures/upstream, float64).

Each family's tiny release files are converted with its tiny base components, reloaded through the
normal loading path, and one classifier-free-guidance denoising step of posedive's model (reference
pass, pose guider, denoising U-Net, the family's identity and unconditional tokens and scheduler) is
compared with the step the upstream code computed on the same inputs (expected.safetensors).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from posedive.errors import CheckpointError, InputError
from posedive.generation.architectures import SD15_UNET
from posedive.generation.families import FAMILIES, generator_family
from posedive.generation.families.convert import ConversionRecord, convert_generator, convert_guiders, convert_unets
from posedive.generation.training_config import WeightsSource

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"
# both sides run in float64: what is left is summation order (measured 4e-14 at most)
STEP_TOLERANCE = 1e-12
# the fixtures' tiny TransReID (tests/fixtures/upstream/transreid/case.json); heads cannot be read from shapes
TINY_VIT = {"embed_dim": 32, "depth": 3, "num_heads": 2}


@dataclass(frozen=True)
class UpstreamCase:
    family: str
    folder: str
    release: str
    reference: str
    guider_inputs: tuple[str, ...]
    identity_architecture: dict | None = None
    clip: bool = field(default=True)

    @property
    def root(self) -> Path:
        return UPSTREAM / self.folder

    @property
    def release_dir(self) -> Path:
        return self.root / self.release

    def base(self, part: str) -> WeightsSource:
        return WeightsSource(path=str(self.root / "base"), subfolder=part)

    def convert(self, out: Path, release: Path | None = None, **options) -> ConversionRecord:
        extra = {"image_encoder": self.base("image_encoder")} if self.clip else {}
        return convert_generator(self.family, release or self.release_dir, out, unet_config=self.base("unet"),
                                 vae=self.base("vae"), identity_architecture=self.identity_architecture,
                                 **extra, **options)


CASES = {
    case.family: case
    for case in (
        UpstreamCase("pose2id", "pose2id", "pretrained", "ref.png", ("pose_guider_input",), TINY_VIT, clip=False),
        UpstreamCase("animate-anyone", "animate_anyone", "pretrained_weights", "ref.png", ("pose_guider_input",)),
        UpstreamCase("champ", "champ", "pretrained_models/champ", "inputs/ref.png",
                     tuple(f"guidance_tensor_{name}" for name in ("depth", "normal", "semantic_map", "dwpose"))),
    )
}


def max_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return (actual.double() - expected.double()).abs().max().item()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """family -> (its converted folder, the conversion record), converted once per module."""
    root = tmp_path_factory.mktemp("converted")
    done = {}

    def get(family: str):
        if family not in done:
            done[family] = (root / family, CASES[family].convert(root / family))
        return done[family]

    return get


def test_every_family_has_an_upstream_fixture():
    assert set(CASES) == set(FAMILIES)


# ----------------------------------------------------------------------------------- every key
@pytest.mark.parametrize("family", sorted(CASES))
def test_every_released_key_is_converted_or_listed_unused_with_its_reason(family, converted):
    case, chosen = CASES[family], generator_family(family)
    folder, record = converted(family)
    sizes = {path.name: len(torch.load(path, weights_only=True))
             for path in case.release_dir.glob("*.pth") if path.name in {r.source for r in record.reports}}
    assert set(sizes) == {"denoising_unet.pth", "reference_unet.pth", *chosen.guider_files.values()}
    for report in record.reports:
        assert report.consumed + len(report.unused) == sizes[report.source], report.source
        assert all(item.reason for item in report.unused)
    by_file = {report.source: report for report in record.reports}
    assert (by_file["denoising_unet.pth"].consumed, by_file["reference_unet.pth"].consumed) == (686, 682)
    if family == "champ":  # attentions.0-4 and guidance_attention: never run by Champ's forward
        for filename in chosen.guider_files.values():
            assert len(by_file[filename].unused) == 114
            assert {item.key.split(".")[0] for item in by_file[filename].unused} == {"attentions", "guidance_attention"}
            assert not any(item.key.startswith("attentions.5.") for item in by_file[filename].unused)
    else:
        assert all(report.unused == () for report in record.reports)
    assert set(record.filled) == {f"reference_unet.{key}" for key in
                                  ("conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias")}
    saved = json.loads((folder / "posedive_generator.json").read_text())["conversion"]
    assert ConversionRecord.model_validate(saved) == record


@pytest.mark.parametrize("family", sorted(CASES))
def test_the_folder_records_the_sha256_of_every_source_file(family, converted):
    case, chosen = CASES[family], generator_family(family)
    folder, record = converted(family)
    expected = {name: hashlib.sha256((case.release_dir / name).read_bytes()).hexdigest() for name in chosen.release_files}
    assert record.source_sha256 == expected
    saved = json.loads((folder / "posedive_generator.json").read_text())
    assert saved["conversion"]["source_sha256"] == expected and saved["conversion"]["family"] == family


def _copy_release(case: UpstreamCase, tmp_path: Path) -> Path:
    release = tmp_path / "release"
    shutil.copytree(case.release_dir, release)
    return release


@pytest.mark.parametrize("family", sorted(CASES))
def test_an_unknown_key_fails_naming_it(family, tmp_path):
    case = CASES[family]
    release = _copy_release(case, tmp_path)
    state = torch.load(release / "denoising_unet.pth", weights_only=True)
    state["down_blocks.0.extra_scale"] = torch.ones(3)
    torch.save(state, release / "denoising_unet.pth")
    with pytest.raises(CheckpointError, match=r"(?s)denoising_unet\.pth: .*unexpected key 'down_blocks\.0\.extra_scale'"):
        case.convert(tmp_path / "out", release)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("family", sorted(CASES))
def test_a_misshapen_guider_key_fails_naming_it_and_both_shapes(family, tmp_path):
    case, chosen = CASES[family], generator_family(family)
    release = _copy_release(case, tmp_path)
    filename = next(iter(chosen.guider_files.values()))
    state = torch.load(release / filename, weights_only=True)
    state["blocks.0.bias"] = torch.zeros(state["blocks.0.bias"].shape[0] + 1)
    torch.save(state, release / filename)
    width = state["blocks.0.weight"].shape[0]
    with pytest.raises(CheckpointError, match=rf"(?s){filename}: .*key 'blocks\.0\.bias' has shape \[{width + 1}\], "
                                              rf"expected \[{width}\]"):
        case.convert(tmp_path / "out", release)


def test_a_missing_release_file_names_it_and_the_download(tmp_path):
    case = CASES["animate-anyone"]
    release = _copy_release(case, tmp_path)
    (release / "pose_guider.pth").unlink()
    with pytest.raises(InputError, match="pose_guider.pth") as error:
        case.convert(tmp_path / "out", release)
    assert "hf download patrolli/AnimateAnyone" in error.value.hint


def test_an_existing_folder_is_kept_unless_overwrite_and_then_moved_aside(tmp_path):
    case = CASES["animate-anyone"]
    out = tmp_path / "generator"
    out.mkdir()
    (out / "mine.txt").write_text("the user's file")
    with pytest.raises(InputError, match="already exists"):
        case.convert(out)
    assert (out / "mine.txt").read_text() == "the user's file"
    case.convert(out, overwrite=True)
    assert (out / "posedive_generator.json").is_file()
    moved = [path for path in tmp_path.iterdir() if path.name.startswith("generator.replaced-")]
    assert len(moved) == 1 and (moved[0] / "mine.txt").read_text() == "the user's file"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["generator", moved[0].name])  # no leftovers


# ------------------------------------------------------------------------------ one CFG step
def _load_float64(family: str, folder: Path):
    """The converted folder through the loading path a recipe uses: ``load_generator`` (contract checked
    against a recipe at the family's resolution) where posedive renders the family's maps; Champ's maps are
    not rendered by posedive yet, so its folder loads with ``PoseDivePipeline.from_pretrained``."""
    from posedive.generation.generator import load_generator
    from posedive.generation.pipeline import PoseDivePipeline
    from posedive.recipe import GeneratorConfig

    chosen = generator_family(family)
    if family == "champ":
        return PoseDivePipeline.from_pretrained(folder).to(torch.float64)
    config = GeneratorConfig(weights=str(folder), family=family, width=chosen.width, height=chosen.height,
                             device="cpu", dtype="float32")
    generator = load_generator(config, folder.parent)
    assert generator.contract.family == family and generator.info.description.startswith(chosen.title)
    return generator.pipeline.to(torch.float64)


def _one_guided_step(pipeline, reference: Image.Image, conditions: torch.Tensor, noise: torch.Tensor,
                     steps: int, guidance_scale: float) -> dict[str, torch.Tensor]:
    """The first step of ``PoseDivePipeline.__call__``, with its intermediate tensors."""
    from posedive.generation.models.two_branch import TwoBranchModel

    height, width = conditions.shape[-2:]
    dtype = torch.float64
    tokens, unconditional = pipeline.encode_identity([reference], dtype)
    latents = pipeline.encode_reference_latents([reference], height, width, torch.device("cpu"), dtype)
    pipeline.scheduler.set_timesteps(steps)
    t = pipeline.scheduler.timesteps[0]
    model = TwoBranchModel(pipeline.reference_unet, pipeline.denoising_unet, pipeline.pose_guider)
    keep = torch.tensor([False, True])
    with torch.no_grad(), model.reference_attention() as bank:
        model.encode_reference(bank, latents, tokens)
        pose = model.encode_conditions(conditions)
        prediction = model.predict_noise(bank, torch.cat([noise] * 2), t, tokens, pose, keep, unconditional)
    uncond, cond = prediction.chunk(2)
    guided = uncond + guidance_scale * (cond - uncond)
    step = pipeline.scheduler.step(guided, t, noise)
    return {
        "identity_tokens_cond": tokens, "identity_tokens_uncond": unconditional, "reference_latents": latents,
        "pose_features": pose, "noise_pred_uncond": uncond, "noise_pred_cond": cond, "noise_pred_guided": guided,
        "latents_next": step.prev_sample, "pred_original_sample": step.pred_original_sample,
    }


@pytest.mark.parametrize("family", sorted(CASES))
def test_one_guided_step_reproduces_the_upstream_forward_in_float64(family, converted, record_property):
    case, chosen = CASES[family], generator_family(family)
    folder, _ = converted(family)
    expected = load_file(case.root / "expected.safetensors")
    pipeline = _load_float64(family, folder)
    inference = json.loads((case.root / "case.json").read_text())["inference"]
    assert (inference["num_inference_steps"], inference["guidance_scale"]) == (chosen.steps, chosen.guidance_scale)
    conditions = torch.cat([expected[name] for name in case.guider_inputs], 1).double()
    ours = _one_guided_step(pipeline, Image.open(case.root / case.reference), conditions, expected["noise_latents"],
                            chosen.steps, chosen.guidance_scale)
    assert torch.equal(pipeline.scheduler.timesteps, expected["scheduler_timesteps"])
    assert max_difference(pipeline.scheduler.alphas_cumprod, expected["scheduler_alphas_cumprod"]) == 0
    differences = {name: max_difference(tensor, expected[name]) for name, tensor in ours.items()}
    print(f"\n{family}: max |posedive - upstream| per tensor (float64): {json.dumps(differences)}")
    record_property("max_abs_difference", differences)
    assert max(differences.values()) < STEP_TOLERANCE, differences
    assert ours["noise_pred_guided"].abs().max() > 1  # values are O(1): the tolerance is relative too
    if family == "pose2id":  # IFR(TransReID(blank image)), not zeros
        assert ours["identity_tokens_uncond"].abs().max() > 0.1
    else:
        assert torch.count_nonzero(ours["identity_tokens_uncond"]) == 0


@pytest.mark.parametrize("family", ["pose2id", "animate-anyone"])
def test_the_contract_hands_the_guider_the_upstream_pose_input(family):
    """posedive's skeleton at the generation size, through the family's contract (Pose2ID: BGR, as OpenCV
    read it upstream), is the pose guider input upstream made (after the same LANCZOS resize)."""
    from posedive.generation.pipeline import conditions_to_tensor

    case, chosen = CASES[family], generator_family(family)
    expected = load_file(case.root / "expected.safetensors")["pose_guider_input"]
    height, width = expected.shape[-2:]
    pose = np.array(Image.open(case.root / "pose.png").convert("RGB").resize((width, height), Image.LANCZOS))
    form = chosen.contract.maps[0].form
    tensor = conditions_to_tensor([{form.source or "skeleton": pose}], height, width, chosen.contract)
    assert torch.equal(tensor, expected)
    if family == "pose2id":
        assert not torch.equal(tensor, expected.flip(1))  # the order matters on this drawing


# ---------------------------------------------------------------------------- full-size keys
def _meta(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}


@pytest.mark.parametrize("family", sorted(CASES))
def test_full_size_key_sets_convert_onto_full_size_posedive_modules(family):
    """The released files' full key/shape sets go through the converter's mapping onto SD-1.5-size modules
    built on the meta device: every key mapped or known unused, every module key filled, shapes equal."""
    from diffusers import UNet2DConditionModel

    from posedive.generation.models.pose_guider import PoseGuider
    from posedive.generation.state_dicts import module_shapes

    case, chosen = CASES[family], generator_family(family)
    full = json.loads((case.root / "full_size_keys.json").read_text())
    denoising, reference, (den_report, ref_report) = convert_unets(
        _meta(full["denoising_unet.pth"]), _meta(full["reference_unet.pth"]), SD15_UNET)
    with torch.device("meta"):
        unet = module_shapes(UNet2DConditionModel(**SD15_UNET))
    assert {key: tuple(value.shape) for key, value in denoising.items()} == unet
    assert {key: tuple(value.shape) for key, value in reference.items()} == unet
    assert (den_report.consumed, ref_report.consumed) == (686, 682)
    config, state, reports = convert_guiders(
        chosen, {name: _meta(full[filename]) for name, filename in chosen.guider_files.items()})
    assert config["conditioning_embedding_channels"] == SD15_UNET["block_out_channels"][0]
    with torch.device("meta"):
        guider = module_shapes(PoseGuider(**config))
    assert {key: tuple(value.shape) for key, value in state.items()} == guider
    for report, filename in zip(reports, chosen.guider_files.values()):
        assert report.consumed + len(report.unused) == len(full[filename])
    # every other released file is one the family lists as not needed, with its reason
    others = set(full) - {"denoising_unet.pth", "reference_unet.pth", *chosen.guider_files.values()}
    identity_files = {"transformer_20.pth", "IFR.pth"} if family == "pose2id" else set()
    assert others - identity_files <= set(chosen.optional_files)
    if family != "pose2id":
        assert len(full["motion_module.pth"]) == 588 and "motion_module.pth" in chosen.optional_files
