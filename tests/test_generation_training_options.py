"""The training options the released relatives train with, on tiny models: noise offset, min-SNR weights,
zero terminal SNR with velocity targets and trailing timesteps, the U-Net of SD image-variations, the
``sd-vae-ft-mse`` VAE, one pose guider per map, and ``train-generator --init-from`` a generator folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from diffusers import DDPMScheduler
from generation_tiny import (
    HEIGHT,
    IMAGE_ENCODER,
    POSE_GUIDER,
    UNET,
    VAE,
    WIDTH,
    make_pairs,
    make_pipeline,
    one_torch_thread,
    random_image,
    request,
    training_config,
)
from safetensors.torch import load_file

from posedive.errors import CheckpointError, ConfigError
from posedive.generation import PoseDivePipeline, load_training_config, read_contract, train_generator
from posedive.generation.checkpoint import METADATA_FILE, weights_sha256
from posedive.generation.training.draws import draw
from posedive.generation.training.loss import weighted_mse
from posedive.generation.training.schedule import min_snr_weights, training_schedule
from posedive.generation.training.trainer import Trainer
from posedive.generation.training_config import (
    IMAGE_VARIATIONS_UNET,
    SD15_UNET,
    SD_VAE_FT_MSE_VAE,
    PretrainedInit,
    ScheduleOverrides,
)

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO / "tests" / "fixtures" / "upstream"
# The released relatives' schedule (each family's base/scheduler/scheduler_config.json, as their inference
# scripts build it); Pose2ID's betas are scaled_linear, Moore-AnimateAnyone's and Champ's linear.
ZERO_SNR = dict(beta_start=0.00085, beta_end=0.012, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                timestep_spacing="trailing", steps_offset=1)

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    make_pairs(folder, 4)
    return folder


# ------------------------------------------------------------------------------------------ noise offset
def test_noise_offset_shifts_each_sample_and_channel_by_a_constant():
    latents = torch.zeros(3, 4, 8, 6)
    plain = draw(torch.Generator().manual_seed(7), latents, 1000, 0.5)
    # the draws without an offset are those training always made: noise, timesteps, dropout, in that order
    reference = torch.Generator().manual_seed(7)
    assert torch.equal(plain.noise, torch.randn(latents.shape, generator=reference))
    assert torch.equal(plain.timesteps, torch.randint(0, 1000, (3,), generator=reference))
    assert torch.equal(plain.keep_reference, torch.rand(3, generator=reference) >= 0.5)

    offset = draw(torch.Generator().manual_seed(7), latents, 1000, 0.5, 0.1)
    assert torch.equal(offset.timesteps, plain.timesteps) and torch.equal(offset.keep_reference, plain.keep_reference)
    shift = offset.noise - plain.noise
    per_channel = shift[:, :, :1, :1]
    assert torch.allclose(shift, per_channel.expand_as(shift), atol=1e-6)  # constant over the image
    assert per_channel.flatten().unique().numel() == 12  # one value per sample and channel
    expected = 0.1 * torch.randn(3, 4, 1, 1, generator=reference)  # drawn after the dropout
    assert torch.allclose(per_channel, expected, atol=1e-6)


# ----------------------------------------------------------------------------------------------- min-SNR
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_weights_follow_hang_et_al(prediction_type):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              prediction_type=prediction_type)
    timesteps = torch.tensor([0, 10, 100, 300, 999])
    alpha_bar = scheduler.alphas_cumprod.double()[timesteps]
    snr = alpha_bar / (1 - alpha_bar)
    clipped = torch.minimum(snr, torch.full_like(snr, 5.0))
    expected = clipped / (snr + 1) if prediction_type == "v_prediction" else clipped / snr
    weights = min_snr_weights(scheduler, timesteps, 5.0)
    assert torch.allclose(weights.double(), expected, rtol=1e-5)
    if prediction_type == "epsilon":  # low noise is down-weighted to gamma / SNR, high noise kept at 1
        assert weights[0] < 0.01 and weights[-1] == 1.0


def test_weighted_loss_is_the_mean_of_weighted_per_sample_errors():
    generator = torch.Generator().manual_seed(0)
    prediction, target = torch.randn(3, 4, 5, 5, generator=generator), torch.randn(3, 4, 5, 5, generator=generator)
    weights = torch.tensor([1.0, 0.5, 0.0])
    per_sample = ((prediction - target) ** 2).mean(dim=(1, 2, 3))
    assert torch.allclose(weighted_mse(prediction, target, weights), (per_sample * weights).mean())
    assert torch.equal(weighted_mse(prediction, target, None), torch.nn.functional.mse_loss(prediction, target))


def test_noise_offset_and_min_snr_change_training_and_repeat_themselves(pairs, tmp_path):
    plain = train_generator(training_config(pairs, tmp_path / "plain")).loss_first
    aids = dict(noise_offset=0.05, snr_gamma=5.0)
    aided = train_generator(training_config(pairs, tmp_path / "aided", diffusion=aids)).loss_first
    again = train_generator(training_config(pairs, tmp_path / "again", diffusion=aids)).loss_first
    assert aided != plain and aided == again
    saved = json.loads((tmp_path / "aided" / "generator" / METADATA_FILE).read_text())
    assert saved["training"]["config"]["diffusion"]["noise_offset"] == 0.05
    assert saved["training"]["config"]["diffusion"]["snr_gamma"] == 5.0


# ------------------------------------------------------------------------- zero SNR, v-prediction, trailing
@pytest.mark.parametrize("family, beta_schedule", [("pose2id", "scaled_linear"), ("animate_anyone", "linear"),
                                                   ("champ", "linear")])
def test_the_released_schedules_are_config_values(family, beta_schedule):
    """diffusion.schedule turns a scheduler into the one each released family samples with: the same
    config, the same betas (zero terminal SNR) and the same trailing timesteps as its upstream run."""
    from diffusers import DDIMScheduler, DDPMScheduler

    upstream = json.loads((UPSTREAM / family / "base" / "scheduler" / "scheduler_config.json").read_text())
    case = json.loads((UPSTREAM / family / "case.json").read_text())["inference"]
    expected = load_file(str(UPSTREAM / family / "expected.safetensors"))
    trained = training_schedule(DDPMScheduler(clip_sample=False),
                                ScheduleOverrides(beta_schedule=beta_schedule, **ZERO_SNR))
    sampler = DDIMScheduler.from_config(trained.config)  # what the saved generator samples with
    for name, value in upstream.items():
        if not name.startswith("_"):
            assert sampler.config[name] == value, name
    assert torch.allclose(sampler.alphas_cumprod.double(), expected["scheduler_alphas_cumprod"], atol=1e-7)
    assert float(sampler.alphas_cumprod[-1]) == 0.0
    sampler.set_timesteps(case["num_inference_steps"])
    assert sampler.timesteps.tolist() == expected["scheduler_timesteps"].tolist()


def test_zero_terminal_snr_needs_velocity_targets():
    from diffusers import DDPMScheduler

    with pytest.raises(ConfigError, match="zero terminal SNR") as error:
        training_schedule(DDPMScheduler(), ScheduleOverrides(rescale_betas_zero_snr=True))
    assert "v_prediction" in error.value.hint
    with pytest.raises(ValueError, match="beta_start=0.02 must be below beta_end=0.01"):
        ScheduleOverrides(beta_start=0.02, beta_end=0.01)


def test_a_zero_snr_generator_trains_on_velocity_and_samples_from_pure_noise(pairs, tmp_path):
    schedule = dict(beta_schedule="scaled_linear", **ZERO_SNR)
    trainer = Trainer(training_config(pairs, tmp_path / "run", max_steps=2, diffusion=dict(schedule=schedule)))
    result = trainer.run()
    assert result.steps == 2 and np.isfinite(result.loss_last)
    assert trainer.components.noise_scheduler.config.prediction_type == "v_prediction"
    pipe = PoseDivePipeline.from_pretrained(tmp_path / "run" / "generator")
    scheduler = pipe.scheduler
    assert scheduler.__class__.__name__ == "DDIMScheduler"
    assert {name: scheduler.config[name] for name in schedule} == schedule
    scheduler.set_timesteps(4)
    assert scheduler.timesteps.tolist() == [999, 749, 499, 249]  # trailing: the first step is pure noise
    pipe.set_progress_bar_config(disable=True)
    sample = request(0)
    from posedive.generation import conditions_to_tensor

    conditions = conditions_to_tensor([sample.conditions.maps(pipe.pose_guider.contract.map_names)], HEIGHT, WIDTH,
                                      pipe.pose_guider.contract)
    images = pipe([sample.reference], conditions, [torch.Generator().manual_seed(0)], height=HEIGHT, width=WIDTH,
                  num_inference_steps=4, output_type="np").images
    assert images.shape == (1, HEIGHT, WIDTH, 3) and np.isfinite(images).all()


# --------------------------------------------------------- pretrained: image-variations U-Net, ft-mse VAE
@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Tiny stand-ins in the released layouts: an SD-1.5 base (unet/, vae/, scheduler/ of a PNDM config),
    an SD image-variations repo (unet/, image_encoder/, feature_extractor/) and an sd-vae-ft-mse VAE
    (config and weights at the top level), each from its own seed."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

    root = tmp_path_factory.mktemp("pretrained")
    torch.manual_seed(1)
    UNet2DConditionModel(**UNET).save_pretrained(root / "sd15" / "unet")
    AutoencoderKL(**VAE).save_pretrained(root / "sd15" / "vae")
    PNDMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, skip_prk_steps=True,
                  steps_offset=1).save_pretrained(root / "sd15" / "scheduler")
    torch.manual_seed(2)
    UNet2DConditionModel(**UNET).save_pretrained(root / "image-variations" / "unet")
    CLIPVisionModelWithProjection(CLIPVisionConfig(**IMAGE_ENCODER)).save_pretrained(root / "image-variations" / "image_encoder")
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "image-variations" / "feature_extractor")
    torch.manual_seed(3)
    AutoencoderKL(**VAE).save_pretrained(root / "sd-vae-ft-mse")
    return root


def _pretrained_model(root: Path, **overrides) -> dict:
    model = dict(kind="pretrained", base=str(root / "sd15"), base_revision=None,
                 unet=dict(path=str(root / "image-variations"), subfolder="unet"),
                 image_encoder=str(root / "image-variations"), image_encoder_revision=None,
                 pose_guider=dict(block_out_channels=POSE_GUIDER["block_out_channels"]))
    model.update(overrides)
    return model


def _same_weights(module: torch.nn.Module, folder: Path) -> bool:
    saved = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    state = module.state_dict()
    return state.keys() == saved.keys() and all(torch.equal(state[k].cpu(), saved[k]) for k in saved)


def test_both_unets_start_from_the_image_variations_unet(pairs, pretrained, tmp_path):
    assert PretrainedInit(kind="pretrained").unet == IMAGE_VARIATIONS_UNET
    assert IMAGE_VARIATIONS_UNET.path == "lambdalabs/sd-image-variations-diffusers" and IMAGE_VARIATIONS_UNET.revision
    trainer = Trainer(training_config(pairs, tmp_path / "iv", model=_pretrained_model(pretrained)))
    trainer.setup()
    components = trainer.components
    for unet in (components.reference_unet, components.denoising_unet):
        assert _same_weights(unet, pretrained / "image-variations" / "unet")
    assert _same_weights(components.vae, pretrained / "sd15" / "vae")  # the VAE stays SD-1.5's unless asked
    assert components.noise_scheduler.config.beta_schedule == "scaled_linear"  # the base's schedule
    # SD-1.5's text-to-image U-Net stays available, named explicitly
    assert SD15_UNET.path == PretrainedInit(kind="pretrained").base and SD15_UNET.subfolder == "unet"
    sd15 = _pretrained_model(pretrained, unet=dict(path=str(pretrained / "sd15"), subfolder="unet"))
    trainer = Trainer(training_config(pairs, tmp_path / "sd15", model=sd15))
    trainer.setup()
    assert _same_weights(trainer.components.denoising_unet, pretrained / "sd15" / "unet")


def test_the_vae_can_be_sd_vae_ft_mse(pairs, pretrained, tmp_path):
    assert SD_VAE_FT_MSE_VAE.path == "stabilityai/sd-vae-ft-mse" and len(SD_VAE_FT_MSE_VAE.revision) == 40
    assert SD_VAE_FT_MSE_VAE.subfolder is None  # the repo keeps its VAE at the top level
    model = _pretrained_model(pretrained, vae=dict(path=str(pretrained / "sd-vae-ft-mse")))
    train_generator(training_config(pairs, tmp_path / "run", model=model))
    saved = tmp_path / "run" / "generator"
    assert _same_weights(PoseDivePipeline.from_pretrained(saved).vae, pretrained / "sd-vae-ft-mse")


def test_a_per_map_generator_from_pretrained_weights_saves_loads_and_generates(pairs, pretrained, tmp_path):
    from posedive.generation import load_generator
    from posedive.recipe import GeneratorConfig

    maps = [dict(name="depth", encoding="near-bright", channels=1), dict(name="normal", encoding="camera-opengl", channels=3),
            dict(name="skeleton", encoding="openpose18-rgb", channels=3)]
    guider = dict(block_out_channels=POSE_GUIDER["block_out_channels"], conditions=dict(guiders="per_map", maps=maps))
    train_generator(training_config(pairs, tmp_path / "run", model=_pretrained_model(pretrained, pose_guider=guider)))
    saved = tmp_path / "run" / "generator"
    contract = read_contract(saved)
    assert contract.guiders == "per_map" and contract.map_names == ("depth", "normal", "skeleton")
    loaded = PoseDivePipeline.from_pretrained(saved).pose_guider
    assert sorted(loaded.guiders) == ["depth", "normal", "skeleton"]
    weights = load_file(str(saved / "pose_guider" / "diffusion_pytorch_model.safetensors"))
    assert {k.split(".")[1] for k in weights} == {"depth", "normal", "skeleton"}
    generator = load_generator(GeneratorConfig(weights=str(saved), steps=2, width=WIDTH, height=HEIGHT), tmp_path)
    images = generator.generate([request(0), request(1)])
    assert [image.size for image in images] == [(WIDTH, HEIGHT)] * 2


# ------------------------------------------------------------------------------------------- --init-from
@pytest.fixture()
def released(tmp_path):
    """A generator folder like a converted released model: a zero-SNR v-prediction DDIM scheduler with
    linear betas, a skeleton-only guider in BGR, and no posedive_generator.json."""
    from diffusers import DDIMScheduler

    from posedive.generation import PoseGuider

    components = make_pipeline(seed=5).components
    contract = dict(maps=[dict(name="skeleton", encoding="openpose18-bgr", channels=3)], guiders="concatenated",
                    resolution=[64, 128])
    components["pose_guider"] = PoseGuider(
        conditioning_channels=3, block_out_channels=tuple(POSE_GUIDER["block_out_channels"]),
        conditioning_embedding_channels=UNET["block_out_channels"][0], conditions=contract,
    )
    components["scheduler"] = DDIMScheduler(beta_schedule="linear", clip_sample=False, **ZERO_SNR)
    folder = tmp_path / "converted"
    PoseDivePipeline(**components).save_pretrained(folder)
    return folder


def _cli(*args: str):
    from typer.testing import CliRunner

    from posedive.cli import app

    return CliRunner().invoke(app, ["train-generator", *args])


def _write_config(pairs, tmp_path) -> Path:
    config = json.loads(training_config(pairs, tmp_path / "stage2").model_dump_json())
    path = tmp_path / "stage2.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_init_from_starts_stage_2_from_a_generator_folder(pairs, released, tmp_path):
    config = _write_config(pairs, tmp_path)
    result = _cli(str(config), "--init-from", str(released), "--max-steps", "1")
    assert result.exit_code == 0, result.output
    trained = tmp_path / "stage2" / "generator"
    source, pipe = PoseDivePipeline.from_pretrained(released), PoseDivePipeline.from_pretrained(trained)
    # the scheduler config carries over: training predicted velocities, sampling keeps zero SNR and trailing steps
    for name, value in source.scheduler.config.items():
        if not name.startswith("_"):
            assert pipe.scheduler.config[name] == value, name
    # the condition contract carries over, at the resolution of this run
    assert read_contract(trained).model_dump(exclude={"resolution"}) == read_contract(released).model_dump(exclude={"resolution"})
    assert read_contract(trained).resolution == (WIDTH, HEIGHT)
    # the frozen components are the folder's; the trained ones started from its U-Nets, not the config's scratch model
    for name in ("vae", "image_encoder"):
        assert all(torch.equal(a, b) for a, b in zip(getattr(pipe, name).state_dict().values(),
                                                     getattr(source, name).state_dict().values())), name
    moved = max(float(torch.dist(a, b)) for a, b in zip(pipe.denoising_unet.state_dict().values(),
                                                        source.denoising_unet.state_dict().values()))
    assert 0 < moved < 0.5  # one small step away from the folder's weights
    meta = json.loads((trained / METADATA_FILE).read_text())
    path = str(released.resolve())
    assert meta["training"]["config"]["model"] == {"kind": "generator", "path": path, "revision": None}
    assert meta["training"]["init"] == {"path": path, "revision": None, "weights_sha256": weights_sha256(released)}


# family -> the identity encoder its converted folder holds
CONVERTED_IDENTITY = {
    "animate-anyone": ("posedive.generation.identity.clip", "ClipIdentityEncoder"),
    "pose2id": ("posedive.generation.identity.transreid_ifr", "TransReIDIdentityEncoder"),
}


@pytest.fixture(scope="module")
def pairs_of_every_family(tmp_path_factory):
    """Pairs holding every map any family's contract reads (Moore-AnimateAnyone's DWPose skeleton among them)."""
    from posedive.generation.data import PAIR_FORMS

    folder = tmp_path_factory.mktemp("family-pairs")
    make_pairs(folder, 4, forms=PAIR_FORMS)
    return folder


@pytest.mark.parametrize("family", sorted(CONVERTED_IDENTITY))
def test_init_from_a_converted_release_trains_through_its_identity_encoder(pairs_of_every_family, tmp_path, family):
    """A folder ``convert-generator`` made from a release holds its identity encoder as the
    ``identity_encoder`` component (no ``image_encoder``): training reads references through it (its own
    preprocessing), keeps it frozen, and the trained folder holds it again."""
    from test_generation_conversion import CASES

    from posedive.generation import load_generator
    from posedive.recipe import GeneratorConfig

    component = CONVERTED_IDENTITY[family]
    released = tmp_path / family
    CASES[family].convert(released)
    assert json.loads((released / "model_index.json").read_text())["image_encoder"] == [None, None]
    pairs = pairs_of_every_family
    result = _cli(str(_write_config(pairs, tmp_path)), "--init-from", str(released), "--max-steps", "1")
    assert result.exit_code == 0, result.output
    trained = tmp_path / "stage2" / "generator"
    index = json.loads((trained / "model_index.json").read_text())
    assert index["identity_encoder"] == list(component)
    assert index["image_encoder"] == [None, None] and index["feature_extractor"] == [None, None]
    source, pipe = PoseDivePipeline.from_pretrained(released), PoseDivePipeline.from_pretrained(trained)
    # the same encoder, preprocessing included (Moore-AnimateAnyone's squash, not the old CLIP centre crop)
    assert pipe.identity_encoder.spec() == source.identity_encoder.spec()
    for name in ("vae", "identity_encoder"):  # frozen: saved as they were loaded
        assert all(torch.equal(a, b.to(a.dtype)) for a, b in zip(getattr(pipe, name).state_dict().values(),
                                                                  getattr(source, name).state_dict().values())), name
    moved = max(float(torch.dist(a, b.to(a.dtype))) for a, b in zip(pipe.denoising_unet.state_dict().values(),
                                                                     source.denoising_unet.state_dict().values()))
    assert moved > 0  # the U-Net trained
    generator = load_generator(GeneratorConfig(weights=str(trained), family=family, steps=2, width=WIDTH,
                                               height=HEIGHT), tmp_path)
    assert generator.identity_encoder == source.identity_encoder.kind
    assert [image.size for image in generator.generate([request(0)])] == [(WIDTH, HEIGHT)]


def test_a_wrapped_clip_tower_reads_references_as_its_feature_extractor_does():
    """Scratch, SD image-variations and pre-identity-encoder generators keep their CLIP tower and feature
    extractor; wrapped as an identity encoder, the tower sees exactly the extractor's pixels (centre crop)."""
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

    from posedive.generation.training.components import wrapped_clip

    tower = CLIPVisionModelWithProjection(CLIPVisionConfig(**IMAGE_ENCODER)).eval()
    size = tower.config.image_size
    extractor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                                      image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.25, 0.3])
    encoder = wrapped_clip(tower, extractor)
    images = [random_image(0), random_image(1, width=90, height=30)]  # tall and wide: the crop matters
    pixels = extractor(images=images, return_tensors="pt").pixel_values
    assert torch.equal(encoder.preprocessor(images), pixels)
    with torch.no_grad():
        assert torch.equal(encoder.encode(pixels), tower(pixels).image_embeds[:, None])


def test_reference_dropout_trains_the_encoders_unconditional_tokens():
    """Rows whose reference is dropped read the identity encoder's unconditional tokens (Pose2ID's are
    the tokens of a blank image, not zeros), the tokens classifier-free guidance samples with."""
    from posedive.generation.models.two_branch import TwoBranchModel
    from posedive.generation.training.loss import diffusion_loss

    pipe = make_pipeline(seed=3)
    net = TwoBranchModel(pipe.reference_unet, pipe.denoising_unet, pipe.pose_guider).eval()
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, HEIGHT // 8, WIDTH // 8, generator=generator)
    width = UNET["cross_attention_dim"]
    encoded = dict(
        latents=latents,
        reference_latents=torch.randn(latents.shape, generator=generator),
        image_embeds=torch.randn(2, 1, width, generator=generator),
        unconditional_embeds=torch.randn(2, 1, width, generator=generator),
        conditions=torch.rand(2, POSE_GUIDER["conditioning_channels"], HEIGHT, WIDTH, generator=generator),
    )
    noise, timesteps = torch.randn(latents.shape, generator=generator), torch.tensor([10, 500])
    scheduler = DDPMScheduler()
    keep = torch.tensor([False, True])
    with torch.no_grad():
        dropped = diffusion_loss(net, scheduler, encoded, noise, timesteps, keep)
        other_reference = torch.stack([torch.randn(1, width, generator=generator), encoded["image_embeds"][1]])
        unread = diffusion_loss(net, scheduler, encoded | dict(image_embeds=other_reference), noise, timesteps, keep)
        zeros = diffusion_loss(net, scheduler, encoded | dict(unconditional_embeds=torch.zeros(2, 1, width)), noise,
                               timesteps, keep)
    assert torch.equal(dropped, unread)  # the dropped row reads no reference tokens
    assert not torch.allclose(dropped, zeros)  # but the unconditional ones


def test_init_from_refuses_a_folder_with_components_it_cannot_carry(pairs, released, tmp_path):
    index = json.loads((released / "model_index.json").read_text())
    index["extra_encoder"] = ["diffusers", "AutoencoderKL"]
    shutil.copytree(released / "vae", released / "extra_encoder")
    (released / "model_index.json").write_text(json.dumps(index))
    config = training_config(pairs, tmp_path / "run").starting_from(str(released))
    with pytest.raises(CheckpointError, match="extra_encoder"):
        train_generator(config)


def test_init_from_errors_name_the_option(pairs, tmp_path):
    config = _write_config(pairs, tmp_path)
    result = _cli(str(config), "--init-revision", "abc")
    assert result.exit_code == 2 and "--init-revision needs --init-from" in result.output
    result = _cli(str(config), "--init-from", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "not-a-generator").mkdir()
    result = _cli(str(config), "--init-from", str(tmp_path / "not-a-generator"))
    assert result.exit_code == 2 and "model_index.json" in result.output


# -------------------------------------------------------------------------------------------- the configs
@pytest.mark.parametrize("path", sorted((REPO / "configs" / "generator").glob("*.yaml")), ids=lambda p: p.name)
def test_generator_configs_load(path):
    config = load_training_config(path)
    if config.model.kind == "pretrained":  # the stage configs start from the image-variations U-Net
        assert config.model.unet == IMAGE_VARIATIONS_UNET
