"""The noise schedule a run trains with, and the min-SNR loss weights it implies.

The schedule is the one the model starts from (the base's ``scheduler/``, the continued generator's
scheduler, a scratch model's ``model.scheduler``) with ``diffusion.schedule``'s changes applied. The
saved generator samples with a DDIM scheduler of the same config, so what training learnt (the betas,
zero terminal SNR, the prediction type) and how sampling visits the timesteps (``timestep_spacing``)
travel with the weights.
"""

from __future__ import annotations

import logging

import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from ...errors import ConfigError
from ..training_config import ScheduleOverrides

logger = logging.getLogger(__name__)

PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction")


def training_schedule(start: DDPMScheduler, changes: ScheduleOverrides) -> DDPMScheduler:
    """``start`` with ``changes`` applied (``start`` itself when there are none), checked."""
    overrides = changes.changes()
    scheduler = DDPMScheduler.from_config(start.config, **overrides) if overrides else start
    for name, value in overrides.items():
        before = start.config.get(name)
        if before != value:
            logger.info("noise schedule: %s %r -> %r (diffusion.schedule)", name, before, value)
    check_schedule(scheduler)
    return scheduler


def has_zero_terminal_snr(scheduler: DDPMScheduler) -> bool:
    return float(scheduler.alphas_cumprod[-1]) == 0.0


def check_schedule(scheduler: DDPMScheduler) -> None:
    """Refuse a schedule training cannot learn from; messages name the field to change."""
    kind = scheduler.config.prediction_type
    if kind not in PREDICTION_TYPES:
        raise ConfigError(
            f"diffusion.schedule.prediction_type: the noise schedule predicts {kind!r}; training supports "
            f"{' or '.join(PREDICTION_TYPES)}",
            hint="set diffusion.schedule.prediction_type",
        )
    if kind == "epsilon" and has_zero_terminal_snr(scheduler):
        # at zero SNR the noisy latent is the noise itself: predicting the noise teaches nothing about the
        # image, and sampling from pure noise fails (Lin et al. 2024, section 3.2)
        raise ConfigError(
            "diffusion.schedule: the noise schedule has zero terminal SNR (rescale_betas_zero_snr) with "
            "prediction_type 'epsilon'; zero terminal SNR needs velocity targets",
            hint="set diffusion.schedule.prediction_type: v_prediction",
        )


def min_snr_weights(scheduler: DDPMScheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample loss weights of min-SNR-gamma (Hang et al. 2023, as the diffusers training scripts
    apply them): the image error weighted by ``min(SNR, gamma)``. The image error is the noise error
    over ``SNR`` and the velocity error over ``SNR + 1``, hence ``min(SNR, gamma) / SNR`` for noise
    targets and ``min(SNR, gamma) / (SNR + 1)`` for velocity targets."""
    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=gamma)
    if scheduler.config.prediction_type == "v_prediction":
        return clipped / (snr + 1)
    return clipped / snr
