"""Tiny random two-branch generators and synthetic data for the generation tests.

Architectures are as small as diffusers' own ``get_dummy_components`` (U-Net widths 32/64, a 4-level
VAE of 8-16 channels, a 2-layer CLIP vision tower), so a full pipeline call takes milliseconds. They
are fixtures with random weights, never results.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from posedive.generation.data import TrainingPair, write_pairs
from posedive.schema import BodyParams, Camera, ConditionSet, GenerationRequest

WIDTH, HEIGHT = 32, 64

UNET = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    block_out_channels=[32, 64],
    layers_per_block=1,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    cross_attention_dim=32,
    attention_head_dim=8,
    norm_num_groups=8,
)
VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    block_out_channels=[8, 8, 16, 16],
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    layers_per_block=1,
    norm_num_groups=4,
)
IMAGE_ENCODER = dict(
    hidden_size=32,
    projection_dim=32,
    intermediate_size=37,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=32,
    patch_size=8,
)
POSE_GUIDER = dict(conditioning_channels=7, block_out_channels=[8, 8, 16, 16])


def make_pipeline(seed: int = 0, randomise_guider: bool = False):
    """A tiny PoseDivePipeline with random weights (denoising U-Net a clone of the reference U-Net)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

    from posedive.generation import PoseDivePipeline, PoseGuider

    torch.manual_seed(seed)
    reference_unet = UNet2DConditionModel(**UNET)
    denoising_unet = UNet2DConditionModel(**UNET)
    denoising_unet.load_state_dict(reference_unet.state_dict())
    guider = PoseGuider(
        conditioning_channels=7, block_out_channels=tuple(POSE_GUIDER["block_out_channels"]), conditioning_embedding_channels=32
    )
    if randomise_guider:
        for parameter in guider.parameters():
            torch.nn.init.normal_(parameter, std=0.3)
    pipe = PoseDivePipeline(
        vae=AutoencoderKL(**VAE),
        image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(**IMAGE_ENCODER)),
        feature_extractor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        reference_unet=reference_unet,
        denoising_unet=denoising_unet,
        pose_guider=guider,
        scheduler=DDIMScheduler(clip_sample=False),
    )
    pipe.set_progress_bar_config(disable=True)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    return pipe


def scratch_model(**overrides) -> dict:
    """The ``model`` section of a tiny scratch training config, without VAE pre-training."""
    return dict(kind="scratch", unet=UNET, vae=VAE, image_encoder=IMAGE_ENCODER, pose_guider=POSE_GUIDER,
                scheduler=dict(clip_sample=False), vae_pretrain=dict(steps=0), **overrides)


def training_config(pairs: Path, out: Path, **overrides):
    """A tiny one-step training config on ``pairs`` writing to ``out``; ``overrides`` replace top-level fields."""
    from posedive.generation import TrainingConfig

    data = dict(
        description="tiny test model",
        output_dir=str(out),
        model=scratch_model(),
        data=dict(pairs=[str(pairs)], width=WIDTH, height=HEIGHT, reference_drop_prob=0.25),
        optim=dict(learning_rate=1e-3),
        max_steps=1,
        batch_size=4,
        log_every=10,
        checkpoint_every=1000,
    )
    data.update(overrides)
    return TrainingConfig.model_validate(data)


def random_image(seed: int, width: int = 40, height: int = 80) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def random_maps(seed: int, width: int = WIDTH, height: int = HEIGHT) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    return {
        "depth": rng.integers(0, 256, (height, width), dtype=np.uint8),
        "normal": rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        "skeleton": rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
    }


def condition_set(seed: int) -> ConditionSet:
    maps = random_maps(seed)
    return ConditionSet(
        condition_id=f"c{seed}",
        keypoints_2d=np.zeros((18, 3), np.float32),
        camera=Camera(
            elevation_deg=0, azimuth_deg=0, distance_m=3, fov_deg=30, width=WIDTH, height=HEIGHT,
            K=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], R=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], t=[0, 0, 3],
        ),
        body=BodyParams(model="anny", pose_id="p", pose=[0.0] * 72),
        **maps,
    )


def request(seed: int) -> GenerationRequest:
    return GenerationRequest(reference=random_image(seed), conditions=condition_set(seed), seed=seed)


def make_pairs(out_dir: Path, count: int, forms: tuple[str, ...] = ()) -> list[Path]:
    """Pairs whose target is a smooth colour field (learnable by a tiny model), keyed pair-000...;
    ``forms``: maps in other families' forms to add (random RGB, as the other maps)."""
    pairs = []
    for i in range(count):
        rng_forms = np.random.default_rng(2000 + i)
        rng = np.random.default_rng(i)
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH] / np.array([HEIGHT, WIDTH])[:, None, None]
        colour = rng.uniform(0, 1, 3)
        target = (255 * np.clip(colour[None, None] * (0.5 + 0.5 * ys[..., None]), 0, 1)).astype(np.uint8)
        maps = random_maps(i)
        pairs.append(
            TrainingPair(
                key=f"pair-{i:03d}",
                reference=np.asarray(random_image(i)),
                target=target,
                pid=str(i),
                frames=[0, 1],
                provenance={"source": "synthetic test pattern"},
                forms={name: rng_forms.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for name in forms},
                **maps,
            )
        )
    return write_pairs(pairs, out_dir, pairs_per_shard=3)


def one_torch_thread():
    """Fixture body: one intra-op thread. The test CPU is shared by several runs, and two spinning
    OpenMP threads per process on two busy cores are many times slower than one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
