"""The random draws of a training step: noise, timesteps and reference dropout.

A step's draws come from a generator seeded by (seed, step) alone, so a resumed run draws what the
uninterrupted run drew.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of optimizer step ``step`` (0-based)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step + 1)


@dataclass(frozen=True)
class StepDraws:
    noise: torch.Tensor  # like the latents
    timesteps: torch.Tensor  # (B,) long
    keep_reference: torch.Tensor  # (B,) bool: False rows learn the unconditional branch


def draw(generator: torch.Generator, latents: torch.Tensor, num_train_timesteps: int, reference_drop_prob: float) -> StepDraws:
    """One micro-batch's draws, in a fixed order (noise, timesteps, dropout) from ``generator``."""
    size = latents.shape[0]
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    timesteps = torch.randint(0, num_train_timesteps, (size,), generator=generator).to(noise.device)
    keep = (torch.rand(size, generator=generator) >= reference_drop_prob).to(noise.device)
    return StepDraws(noise=noise, timesteps=timesteps, keep_reference=keep)
