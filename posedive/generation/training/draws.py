"""The random draws of a training step: noise, timesteps and reference dropout, one stream per process.

A step's draws come from a generator seeded by (seed, step, process index) alone. So a resumed run
draws what the uninterrupted run drew, and under ``accelerate launch`` each of the N processes draws
its own: with one stream for all, every process would noise its batch alike, at the same timesteps,
dropping the reference in the same rows, and N GPUs would train like one. Process 0 draws what a
single-process run draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# torch's CPU generator keeps the low 32 bits of a seed, so the processes' streams are spread over that
# space by 2**32 / golden ratio: process p's step s shares a seed with process q's step s' only when
# s' - s = (p - q) * PROCESS_SEED_STRIDE mod 2**32, which for up to 1,000 processes is more than 1.9
# million steps apart (387 million for up to 8).
PROCESS_SEED_STRIDE = 0x9E3779B1


def step_seed(seed: int, step: int, process_index: int = 0) -> int:
    """The seed of optimizer step ``step`` (0-based) on process ``process_index``."""
    return seed * 1_000_003 + step + 1 + process_index * PROCESS_SEED_STRIDE


def step_generator(seed: int, step: int, process_index: int = 0) -> torch.Generator:
    """The generator of optimizer step ``step`` on process ``process_index``."""
    return torch.Generator().manual_seed(step_seed(seed, step, process_index))


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
