"""The training loss: mean squared error of the model step's noise (or velocity) prediction, optionally
weighted per sample (min-SNR, :func:`~posedive.generation.training.schedule.min_snr_weights`)."""

from __future__ import annotations

from typing import Callable

import torch
from diffusers import DDPMScheduler
from torch import nn

from ...errors import ConfigError
from ..models.two_branch import TwoBranchModel


def training_target(scheduler: DDPMScheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the model learns to predict: the noise, or the velocity for ``v_prediction`` schedulers."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ConfigError(f"scheduler prediction_type {kind!r} is not supported (epsilon or v_prediction)")


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error in float32; with ``weights`` (one per sample), the mean of the weighted
    per-sample means."""
    if weights is None:
        return torch.nn.functional.mse_loss(prediction.float(), target.float())
    per_sample = torch.nn.functional.mse_loss(prediction.float(), target.float(), reduction="none")
    per_sample = per_sample.mean(dim=tuple(range(1, per_sample.ndim)))
    return (per_sample * weights.to(per_sample)).mean()


def diffusion_loss(
    net: nn.Module,
    scheduler: DDPMScheduler,
    encoded: dict[str, torch.Tensor],
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    keep_reference: torch.Tensor | None,
    backward: Callable[[torch.Tensor], None] | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """MSE loss of one batch; ``net`` is a :class:`TwoBranchModel`, possibly wrapped for distributed
    training. ``weights`` weigh the samples (min-SNR; ``None``: all alike). ``backward(loss)`` runs
    inside the bank's scope (gradient checkpointing recomputes the denoising U-Net during backward,
    reading the bank)."""
    model: TwoBranchModel = net.module if hasattr(net, "module") else net
    noisy = scheduler.add_noise(encoded["latents"], noise, timesteps)
    with model.reference_attention() as bank:
        prediction = net(
            bank,
            noisy,
            timesteps,
            encoded["reference_latents"],
            encoded["image_embeds"],
            encoded["conditions"],
            keep_reference,
            encoded.get("unconditional_embeds"),
        )
        target = training_target(scheduler, encoded["latents"], noise, timesteps)
        loss = weighted_mse(prediction, target, weights)
        if backward is not None:
            backward(loss)
    return loss


def fixed_noise_loss(net: nn.Module, scheduler: DDPMScheduler, encoded: dict[str, torch.Tensor], seed: int) -> float:
    """Loss at fixed noise and timesteps (spread over the schedule): comparable before and after."""
    count = encoded["latents"].shape[0]
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(encoded["latents"].shape, generator=generator).to(encoded["latents"])
    steps = scheduler.config.num_train_timesteps
    timesteps = torch.linspace(0, steps - 1, count).round().long().to(noise.device)
    with torch.no_grad():
        return float(diffusion_loss(net, scheduler, encoded, noise, timesteps, None))
