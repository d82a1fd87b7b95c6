"""The parts a training run starts from: built from scratch, loaded from pre-trained weights, adapted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

from ..models.pose_guider import PoseGuider
from ..pipeline import PoseDivePipeline
from ..training_config import GeneratorInit, LoraSpec, PoseGuiderSpec, PretrainedInit, ScratchInit, TrainingConfig

PRETRAINED_VAE = "vae-pretrained"


@dataclass
class Components:
    vae: AutoencoderKL
    image_encoder: CLIPVisionModelWithProjection
    feature_extractor: CLIPImageProcessorPil
    reference_unet: UNet2DConditionModel
    denoising_unet: UNet2DConditionModel
    pose_guider: PoseGuider
    noise_scheduler: DDPMScheduler

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


def new_pose_guider(spec: PoseGuiderSpec, denoising_unet: UNet2DConditionModel, width: int, height: int) -> PoseGuider:
    """A fresh (zero-initialised) guider for the spec's contract whose output width matches ``conv_in``."""
    return PoseGuider(
        conditioning_channels=spec.channels,
        block_out_channels=tuple(spec.block_out_channels),
        conditioning_embedding_channels=denoising_unet.config.block_out_channels[0],
        conditions=spec.conditions.contract(width, height).to_config(),
    )


def _local_or_hub(config: TrainingConfig, name: str) -> str:
    candidate = config.resolve(name)
    return str(candidate) if candidate.exists() else name


def _pretrained(config: TrainingConfig, init: PretrainedInit) -> Components:
    base, rev = _local_or_hub(config, init.base), init.base_revision
    encoder, enc_rev = _local_or_hub(config, init.image_encoder), init.image_encoder_revision
    reference_unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", revision=rev)
    denoising_unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", revision=rev)
    return Components(
        vae=AutoencoderKL.from_pretrained(base, subfolder="vae", revision=rev),
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(encoder, subfolder="image_encoder", revision=enc_rev),
        feature_extractor=CLIPImageProcessorPil.from_pretrained(encoder, subfolder="feature_extractor", revision=enc_rev),
        reference_unet=reference_unet,
        denoising_unet=denoising_unet,
        pose_guider=new_pose_guider(init.pose_guider, denoising_unet, config.data.width, config.data.height),
        noise_scheduler=DDPMScheduler.from_pretrained(base, subfolder="scheduler", revision=rev),
    )


def _continued(config: TrainingConfig, init: GeneratorInit) -> Components:
    pipe = PoseDivePipeline.from_pretrained(_local_or_hub(config, init.path), revision=init.revision)
    return Components(
        vae=pipe.vae,
        image_encoder=pipe.image_encoder,
        feature_extractor=pipe.feature_extractor,
        reference_unet=pipe.reference_unet,
        denoising_unet=pipe.denoising_unet,
        pose_guider=pipe.pose_guider,
        noise_scheduler=DDPMScheduler.from_config(pipe.scheduler.config),
    )


def _scratch(config: TrainingConfig, init: ScratchInit, output_dir: Path) -> Components:
    reference_unet = UNet2DConditionModel(**init.unet)
    denoising_unet = UNet2DConditionModel(**init.unet)
    denoising_unet.load_state_dict(reference_unet.state_dict())  # the two branches start as clones
    vision = CLIPVisionConfig(**init.image_encoder)
    size = vision.image_size
    vae = AutoencoderKL(**init.vae)
    if (output_dir / PRETRAINED_VAE).is_dir():
        vae = AutoencoderKL.from_pretrained(output_dir / PRETRAINED_VAE)
    return Components(
        vae=vae,
        image_encoder=CLIPVisionModelWithProjection(vision),
        feature_extractor=CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
        reference_unet=reference_unet,
        denoising_unet=denoising_unet,
        pose_guider=new_pose_guider(init.pose_guider, denoising_unet, config.data.width, config.data.height),
        noise_scheduler=DDPMScheduler(**init.scheduler),
    )


def build_components(config: TrainingConfig) -> Components:
    """Instantiate (and, for ``pretrained`` / ``generator``, load) every component."""
    init = config.model
    if isinstance(init, PretrainedInit):
        return _pretrained(config, init)
    if isinstance(init, GeneratorInit):
        return _continued(config, init)
    return _scratch(config, init, config.resolve(config.output_dir))


def apply_lora(components: Components, lora: LoraSpec) -> None:
    """Freeze both U-Nets and give their attention projections trainable low-rank adapters."""
    from peft import LoraConfig

    for unet in (components.reference_unet, components.denoising_unet):
        unet.requires_grad_(False)
        unet.add_adapter(
            LoraConfig(
                r=lora.rank,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=list(lora.target_modules),
                init_lora_weights="gaussian",
            )
        )


def assemble_pipeline(components: Components, reference_unet: UNet2DConditionModel,
                      denoising_unet: UNet2DConditionModel, pose_guider: PoseGuider) -> PoseDivePipeline:
    """The inference pipeline of trained parts: the frozen encoders, the trained model, a DDIM scheduler
    of the training noise schedule."""
    return PoseDivePipeline(
        vae=components.vae,
        image_encoder=components.image_encoder,
        feature_extractor=components.feature_extractor,
        reference_unet=reference_unet,
        denoising_unet=denoising_unet,
        pose_guider=pose_guider,
        scheduler=DDIMScheduler.from_config(components.noise_scheduler.config),
    )
