"""The two-branch model: reference U-Net, denoising U-Net and pose guider(s), and its one model step.

Inference (the pipeline's denoising loop) and training run the same three calls:

1. :meth:`TwoBranchModel.encode_reference`: the reference U-Net at t=0 writes its self-attention
   inputs into the bank; at inference (no gradients, the denoising U-Net in eval mode) the banked
   tokens are projected into the denoising U-Net's keys and values once, for every step that follows;
2. :meth:`TwoBranchModel.encode_conditions`: the pose guider turns the stacked condition maps into
   features of the U-Net's first width;
3. :meth:`TwoBranchModel.predict_noise`: the denoising U-Net with the pose features added after
   ``conv_in``, its self-attention reading the bank (eq. 6) and the reference's image embedding in
   cross-attention; rows whose ``keep_reference`` is False (classifier-free guidance's unconditional
   rows, reference dropout in training) see neither: they read the identity encoder's unconditional
   tokens (zeros for CLIP, the tokens of a blank image for Pose2ID's TransReID + IFR).

The parts stay separate components of the saved pipeline (``reference_unet``, ``denoising_unet``,
``pose_guider`` folders), so every checkpoint loads as before; this module composes them. Training
calls :meth:`TwoBranchModel.forward`, the three steps in one call, because ``accelerate``'s
distributed wrapper synchronises the gradients of what ``forward`` runs. Install the bank with
:meth:`TwoBranchModel.reference_attention` around forward *and* backward: with gradient
checkpointing the denoising U-Net's blocks run again during backward and must still read the bank.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from ...errors import InputError
from .pose_guider import PoseGuider
from .reference_attention import ReferenceBank, pose_features_added, reference_attention


class TwoBranchModel(nn.Module):
    """Noise prediction of the two-branch model (paper section 3.4); see the module docstring."""

    def __init__(self, reference_unet: UNet2DConditionModel, denoising_unet: UNet2DConditionModel, pose_guider: PoseGuider) -> None:
        super().__init__()
        self.reference_unet = reference_unet
        self.denoising_unet = denoising_unet
        self.pose_guider = pose_guider

    @contextlib.contextmanager
    def reference_attention(self) -> Iterator[ReferenceBank]:
        """The bank shared by the two U-Nets, with their processors installed for the block."""
        with reference_attention(self.reference_unet, self.denoising_unet) as bank:
            yield bank

    def encode_reference(self, bank: ReferenceBank, reference_latents: torch.Tensor, image_embeds: torch.Tensor) -> None:
        """Run the reference U-Net at t=0 on ``reference_latents`` (its cross-attention reading
        ``image_embeds``, ``(R, 1, D)``), filling ``bank``; at inference, project the bank once."""
        bank.clear()
        zero_t = torch.zeros(reference_latents.shape[0], device=reference_latents.device, dtype=torch.long)
        self.reference_unet(reference_latents, zero_t, encoder_hidden_states=image_embeds, return_dict=False)
        # gradients must reach to_k/to_v through every forward, and a training-mode U-Net (dropout in
        # LoRA adapters) draws new masks per forward: only then is a once-made projection exact
        if not torch.is_grad_enabled() and not self.denoising_unet.training:
            bank.project(self.denoising_unet)

    def encode_conditions(self, conditions: torch.Tensor) -> torch.Tensor:
        """Pose features ``(R, C, h, w)`` of the stacked condition maps (the guider's contract order)."""
        guider = self.pose_guider
        features = guider(conditions.to(device=guider.device, dtype=guider.dtype))
        return features.to(self.denoising_unet.dtype)

    def predict_noise(
        self,
        bank: ReferenceBank,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        image_embeds: torch.Tensor,
        pose_features: torch.Tensor,
        keep_reference: torch.Tensor | None = None,
        unconditional_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The denoising U-Net's prediction for ``noisy_latents`` ``(B, ...)``.

        ``image_embeds`` and ``pose_features`` have the reference batch ``R``, and ``B`` is a multiple
        of it: row ``i`` reads reference ``i % R`` (classifier-free guidance stacks
        ``[unconditional, conditional]``). ``keep_reference`` ``(B,)`` says which rows read the
        reference tokens and the embedding; ``None`` = all. The other rows read ``unconditional_embeds``
        (broadcastable to ``image_embeds``; ``None``: zeros).
        """
        rows, references = noisy_latents.shape[0], image_embeds.shape[0]
        if rows % references:
            raise InputError(f"denoising batch {rows} is not a multiple of the reference batch {references}")
        if rows != references:
            image_embeds = image_embeds.repeat(rows // references, 1, 1)
        if keep_reference is not None:
            if bank.keep is not keep_reference:  # setting it reads the mask to the host: once per batch
                bank.keep = keep_reference
            keep = keep_reference.to(device=image_embeds.device, dtype=torch.bool)[:, None, None]
            fallback = (torch.zeros_like(image_embeds) if unconditional_embeds is None
                        else unconditional_embeds.to(image_embeds).expand_as(image_embeds))
            image_embeds = torch.where(keep, image_embeds, fallback)
        with pose_features_added(self.denoising_unet, pose_features):
            return self.denoising_unet(noisy_latents, timesteps, encoder_hidden_states=image_embeds, return_dict=False)[0]

    def forward(
        self,
        bank: ReferenceBank,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        reference_latents: torch.Tensor,
        image_embeds: torch.Tensor,
        conditions: torch.Tensor,
        keep_reference: torch.Tensor | None = None,
        unconditional_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One training prediction: reference pass, pose features and denoising in one call; dropped
        rows read ``unconditional_embeds`` (see :meth:`predict_noise`)."""
        self.encode_reference(bank, reference_latents, image_embeds)
        pose_features = self.encode_conditions(conditions)
        return self.predict_noise(bank, noisy_latents, timesteps, image_embeds, pose_features, keep_reference,
                                  unconditional_embeds)
