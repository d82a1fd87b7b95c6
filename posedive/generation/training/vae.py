"""Pre-training a scratch model's VAE as an autoencoder on the training images."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..training_config import ScratchInit, TrainingConfig
from .components import PRETRAINED_VAE, Components
from .dataset import EpochSampler, PairsTorchDataset, endless_batches

logger = logging.getLogger(__name__)


def pretrain_vae(components: Components, dataset: PairsTorchDataset, config: TrainingConfig, out: Path) -> None:
    """Train the random VAE as an autoencoder on the training images, set its ``scaling_factor`` to
    1 / std of the latents (as Stable Diffusion did), save it to ``out/vae-pretrained``, freeze it."""
    init = config.model
    assert isinstance(init, ScratchInit)
    spec = init.vae_pretrain
    vae = components.vae
    vae.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=spec.learning_rate, weight_decay=0.0)
    generator = torch.Generator().manual_seed(config.seed)
    sampler = EpochSampler(len(dataset), config.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=spec.batch_size, sampler=sampler, drop_last=len(dataset) >= spec.batch_size
    )
    batches = endless_batches(loader, sampler, 0)
    progress = tqdm(range(spec.steps), desc="VAE pre-training", unit="step")
    for step in progress:
        batch = next(batches)
        images = torch.cat([batch["target"], batch["reference"]])
        posterior = vae.encode(images).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=generator)).sample
        rec_loss = torch.nn.functional.mse_loss(reconstruction, images)
        loss = rec_loss + spec.kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % config.log_every == 0:
            progress.set_postfix(reconstruction=f"{rec_loss.item():.4f}")
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        batch = next(batches)
        latents = vae.encode(torch.cat([batch["target"], batch["reference"]])).latent_dist.mean
        vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    logger.info("VAE pre-trained for %d steps; latent scaling factor %.4f", spec.steps, vae.config.scaling_factor)
    vae.save_pretrained(out / PRETRAINED_VAE)
