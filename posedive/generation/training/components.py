"""The parts a training run starts from: built from scratch, loaded from pre-trained weights, adapted.

The reference is read by one identity encoder (:class:`~posedive.generation.identity.IdentityEncoder`),
whatever the start: a generator folder's ``identity_encoder`` (a converted release), or a CLIP tower
wrapped as a :class:`~posedive.generation.identity.ClipIdentityEncoder` (scratch, SD image-variations,
and generators saved before identity encoders existed). A wrapped tower keeps the resize its feature
extractor applies (``crop``), and the trained generator is saved in the form it started from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

from ...errors import CheckpointError
from ..identity import ClipIdentityEncoder, IdentityEncoder
from ..models.pose_guider import PoseGuider
from ..pipeline import PoseDivePipeline
from ..training_config import (
    GeneratorInit,
    LoraSpec,
    PoseGuiderSpec,
    PretrainedInit,
    ScratchInit,
    TrainingConfig,
    WeightsSource,
)
from .continued import load_continued

PRETRAINED_VAE = "vae-pretrained"
ModelT = TypeVar("ModelT", AutoencoderKL, UNet2DConditionModel)


@dataclass
class Components:
    vae: AutoencoderKL
    identity_encoder: IdentityEncoder
    reference_unet: UNet2DConditionModel
    denoising_unet: UNet2DConditionModel
    pose_guider: PoseGuider
    noise_scheduler: DDPMScheduler
    # set when the encoder is a wrapped CLIP tower that the trained generator stores, as its start did,
    # as ``image_encoder`` + ``feature_extractor`` (the form generators before identity encoders load from)
    feature_extractor: CLIPImageProcessorPil | None = None

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


def wrapped_clip(image_encoder: CLIPVisionModelWithProjection, feature_extractor: CLIPImageProcessorPil) -> ClipIdentityEncoder:
    """A CLIP tower and its feature extractor as an identity encoder that reads references as the
    extractor does: shortest side to the tower's size, then the centre square."""
    return ClipIdentityEncoder.from_clip(image_encoder, feature_extractor, preprocessing="crop")


def _local_or_hub(config: TrainingConfig, name: str) -> str:
    candidate = config.resolve(name)
    return str(candidate) if candidate.exists() else name


def _from_source(config: TrainingConfig, source: WeightsSource, model_class: type[ModelT]) -> ModelT:
    return model_class.from_pretrained(_local_or_hub(config, source.path), subfolder=source.subfolder,
                                       revision=source.revision)


def _pretrained(config: TrainingConfig, init: PretrainedInit) -> Components:
    base, rev = _local_or_hub(config, init.base), init.base_revision
    encoder, enc_rev = _local_or_hub(config, init.image_encoder), init.image_encoder_revision
    reference_unet = _from_source(config, init.unet, UNet2DConditionModel)
    denoising_unet = _from_source(config, init.unet, UNet2DConditionModel)
    vae = (AutoencoderKL.from_pretrained(base, subfolder="vae", revision=rev) if init.vae is None
           else _from_source(config, init.vae, AutoencoderKL))
    feature_extractor = CLIPImageProcessorPil.from_pretrained(encoder, subfolder="feature_extractor", revision=enc_rev)
    tower = CLIPVisionModelWithProjection.from_pretrained(encoder, subfolder="image_encoder", revision=enc_rev)
    return Components(
        vae=vae,
        identity_encoder=wrapped_clip(tower, feature_extractor),
        feature_extractor=feature_extractor,
        reference_unet=reference_unet,
        denoising_unet=denoising_unet,
        pose_guider=new_pose_guider(init.pose_guider, denoising_unet, config.data.width, config.data.height),
        noise_scheduler=DDPMScheduler.from_pretrained(base, subfolder="scheduler", revision=rev),
    )


def _continued(config: TrainingConfig, init: GeneratorInit) -> Components:
    pipe = load_continued(config, init)
    feature_extractor = None
    if pipe.identity_encoder is not None:
        encoder: IdentityEncoder = pipe.identity_encoder
    elif pipe.image_encoder is not None and pipe.feature_extractor is not None:
        encoder, feature_extractor = wrapped_clip(pipe.image_encoder, pipe.feature_extractor), pipe.feature_extractor
    else:  # the pipeline refuses such a folder when it loads; this names the option that pointed at it
        raise CheckpointError(f"model.path: generator {init.path} has no identity encoder (identity_encoder, or "
                              "image_encoder with feature_extractor)")
    return Components(
        vae=pipe.vae,
        identity_encoder=encoder,
        feature_extractor=feature_extractor,
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
    feature_extractor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return Components(
        vae=vae,
        identity_encoder=wrapped_clip(CLIPVisionModelWithProjection(vision), feature_extractor),
        feature_extractor=feature_extractor,
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
    """The inference pipeline of trained parts: the frozen encoders (the identity encoder in the form
    the run started from), the trained model, a DDIM scheduler of the training noise schedule."""
    encoder = components.identity_encoder
    if components.feature_extractor is not None and isinstance(encoder, ClipIdentityEncoder):
        identity = dict(image_encoder=encoder.vision, feature_extractor=components.feature_extractor)
    else:
        identity = dict(identity_encoder=encoder, image_encoder=None, feature_extractor=None)
    return PoseDivePipeline(
        vae=components.vae,
        **identity,
        reference_unet=reference_unet,
        denoising_unet=denoising_unet,
        pose_guider=pose_guider,
        scheduler=DDIMScheduler.from_config(components.noise_scheduler.config),
    )
