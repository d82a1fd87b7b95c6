"""Published architectures, to build random-weight stand-ins when the weights cannot be downloaded.

``SD15_UNET``, ``SD15_VAE`` are the ``config.json`` values of Stable Diffusion 1.5's ``unet`` and
``vae`` (``stable-diffusion-v1-5/stable-diffusion-v1-5``); ``CLIP_VIT_L14_VISION`` is the vision tower
with projection of SD image-variations (CLIP ViT-L/14, 224 px, 768-d projection). Speed and memory
depend on the architecture alone, so ``benchmarks/generation.py`` measures these with random weights.
Real generators are always loaded from their checkpoints, never built from these numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import PoseDivePipeline

SD15_UNET: dict[str, Any] = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    attention_head_dim=8,
    cross_attention_dim=768,
    norm_num_groups=32,
)
SD15_VAE: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)
CLIP_VIT_L14_VISION: dict[str, Any] = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=224,
    patch_size=14,
    projection_dim=768,
    hidden_act="quick_gelu",
)
SD15_POSE_GUIDER: dict[str, Any] = dict(
    conditioning_channels=7, block_out_channels=(16, 32, 96, 256), conditioning_embedding_channels=320
)
SD15_SCHEDULER: dict[str, Any] = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)


def random_sd15_pipeline() -> "PoseDivePipeline":
    """A PoseDivePipeline of the SD-1.5 / CLIP ViT-L/14 architecture with random weights (benchmarks)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from .models.pose_guider import PoseGuider
    from .pipeline import PoseDivePipeline

    try:
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:  # older transformers: the PIL processor has the plain name
        from transformers import CLIPImageProcessor as ImageProcessor

    return PoseDivePipeline(
        vae=AutoencoderKL(**SD15_VAE),
        image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VIT_L14_VISION)),
        feature_extractor=ImageProcessor(
            size={"shortest_edge": 224},
            crop_size={"height": 224, "width": 224},
            image_mean=[0.48145466, 0.4578275, 0.40821073],
            image_std=[0.26862954, 0.26130258, 0.27577711],
        ),
        reference_unet=UNet2DConditionModel(**SD15_UNET),
        denoising_unet=UNet2DConditionModel(**SD15_UNET),
        pose_guider=PoseGuider(**SD15_POSE_GUIDER),
        scheduler=DDIMScheduler(**SD15_SCHEDULER),
    )
