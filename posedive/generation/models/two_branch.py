"""The trainable part of the generator as one module: reference U-Net, denoising U-Net, pose guider.

Training wraps these three in one ``nn.Module`` so that ``accelerate`` prepares (and, on several
GPUs, synchronises) them together. The caller installs the reference-attention processors with
:func:`~posedive.generation.models.reference_attention.reference_attention` around forward *and*
backward: with gradient checkpointing the denoising U-Net's blocks run again during backward and must
still read the bank.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from .pose_guider import PoseGuider
from .reference_attention import ReferenceBank, pose_features_added


class TwoBranchNet(nn.Module):
    """Noise prediction of the two-branch model for one batch (reference pass at t=0, then denoising)."""

    def __init__(self, reference_unet: UNet2DConditionModel, denoising_unet: UNet2DConditionModel, pose_guider: PoseGuider) -> None:
        super().__init__()
        self.reference_unet = reference_unet
        self.denoising_unet = denoising_unet
        self.pose_guider = pose_guider

    def forward(
        self,
        bank: ReferenceBank,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        reference_latents: torch.Tensor,
        image_embeds: torch.Tensor,
        conditions: torch.Tensor,
        keep_reference: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the noise of ``noisy_latents``.

        ``image_embeds`` is ``(B, 1, D)`` (CLIP image embedding of the reference); rows where
        ``keep_reference`` is False see neither the reference tokens nor the embedding (they learn the
        unconditional branch used by classifier-free guidance).
        """
        bank.clear()
        zero_t = torch.zeros_like(timesteps)
        self.reference_unet(reference_latents, zero_t, encoder_hidden_states=image_embeds, return_dict=False)
        if keep_reference is not None:
            bank.keep = keep_reference
            image_embeds = image_embeds * keep_reference.to(image_embeds.dtype)[:, None, None]
        pose = self.pose_guider(conditions.to(self.pose_guider.dtype))
        with pose_features_added(self.denoising_unet, pose):
            return self.denoising_unet(noisy_latents, timesteps, encoder_hidden_states=image_embeds, return_dict=False)[0]
