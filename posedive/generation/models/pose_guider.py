"""The pose guider G of eq. 7: condition maps -> features added to the denoising U-Net's ``conv_in``.

The depth (1 channel), normal (3) and skeleton (3) maps are concatenated (7 channels, eq. 7) and
reduced by stacks of 3x3 convolutions to the latent resolution (1/8 for Stable Diffusion's VAE) and
the width of the U-Net's first block (320 for SD-1.5). The last convolution starts at zero, so at
initialisation the guider adds nothing and a pre-trained U-Net is undisturbed (supplementary 2).

The supplementary describes one guider per map with their outputs concatenated; the main text (eq. 7)
one guider on the concatenated maps. posedive follows eq. 7; ``conditioning_channels`` makes the map
set configurable.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from torch.nn import functional as F


class PoseGuider(ModelMixin, ConfigMixin):
    """Conv stack: ``conv_in``, then per width step a 3x3 conv and a stride-2 3x3 conv, then a
    zero-initialised ``conv_out``.

    Args:
        conditioning_channels: channels of the concatenated condition maps (7 = depth + normal + skeleton).
        block_out_channels: widths of the stages; ``len - 1`` stride-2 convolutions, so 4 widths = 1/8.
        conditioning_embedding_channels: output width; must equal the denoising U-Net's
            ``block_out_channels[0]`` because the output is added to ``conv_in``'s output.
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        conditioning_channels: int = 7,
        block_out_channels: tuple[int, ...] = (16, 32, 96, 256),
        conditioning_embedding_channels: int = 320,
    ) -> None:
        super().__init__()
        if conditioning_channels < 1:
            raise ValueError(f"conditioning_channels must be >= 1, got {conditioning_channels}")
        if len(block_out_channels) < 1 or any(c < 1 for c in block_out_channels):
            raise ValueError(f"block_out_channels must be positive widths, got {block_out_channels}")
        self.conv_in = nn.Conv2d(conditioning_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        for width_in, width_out in zip(block_out_channels[:-1], block_out_channels[1:]):
            self.blocks.append(nn.Conv2d(width_in, width_in, kernel_size=3, padding=1))
            self.blocks.append(nn.Conv2d(width_in, width_out, kernel_size=3, padding=1, stride=2))
        self.conv_out = nn.Conv2d(block_out_channels[-1], conditioning_embedding_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def downscale_factor(self) -> int:
        """How much smaller the output is than the input (must equal the VAE's scale factor)."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(self, conditions: torch.Tensor) -> torch.Tensor:
        """``(B, conditioning_channels, H, W)`` in [0, 1] -> ``(B, embedding_channels, H/f, W/f)``."""
        if conditions.ndim != 4 or conditions.shape[1] != self.config.conditioning_channels:
            raise ValueError(
                f"pose guider expects (B, {self.config.conditioning_channels}, H, W) conditions, "
                f"got shape {tuple(conditions.shape)}"
            )
        hidden = F.silu(self.conv_in(conditions))
        for block in self.blocks:
            hidden = F.silu(block(hidden))
        return self.conv_out(hidden)
