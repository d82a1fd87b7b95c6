"""The pose guider G of eq. 7: condition maps -> features added to the denoising U-Net's ``conv_in``.

A guider is a stack of 3x3 convolutions that reduces the maps to the latent resolution (1/8 for
Stable Diffusion's VAE) and the width of the U-Net's first block (320 for SD-1.5). Its last
convolution starts at zero, so at initialisation the guider adds nothing and a pre-trained U-Net is
undisturbed (supplementary 2).

Which maps it reads, in which order and form, is its condition contract
(:mod:`posedive.generation.contract`), saved in its config. The contract's ``guiders`` picks the
layout: ``concatenated`` runs one stack on the stacked maps (the main text's eq. 7: depth 1 + normal
3 + skeleton 3 = 7 channels); ``per_map`` runs one stack per map and sums their outputs (the
supplementary's "each processed by a respective pose guider network"; Champ's guidance encoders).
Either way the guider takes the maps stacked in contract order, ``(B, contract.channels, H, W)``.
With ``attention_heads`` each stack runs one self-attention transformer block (a diffusers
``Transformer2DModel``, 32 norm groups) on its last width before ``conv_out``, as Champ's guidance
encoders do.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from torch import nn
from torch.nn import functional as F

from ...errors import CheckpointError, InputError
from ..contract import ConditionContract, implied_contract

ATTENTION_NORM_GROUPS = 32


class _ConvLayers:
    """``conv_in``, per width step a 3x3 conv and a stride-2 3x3 conv, an optional transformer block
    (``attention``), and a zero-initialised ``conv_out``.

    A mixin rather than a module, so that a one-stack guider keeps these layers at its top level (the
    parameter names every saved checkpoint uses) and a per-map guider holds one stack per map.
    """

    conv_in: nn.Conv2d
    blocks: nn.ModuleList
    conv_out: nn.Conv2d
    attention: Transformer2DModel | None

    def _build_layers(
        self, in_channels: int, widths: tuple[int, ...], out_channels: int, attention_heads: int | None = None
    ) -> None:
        self.conv_in = nn.Conv2d(in_channels, widths[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            self.blocks.append(nn.Conv2d(width_in, width_in, kernel_size=3, padding=1))
            self.blocks.append(nn.Conv2d(width_in, width_out, kernel_size=3, padding=1, stride=2))
        self.attention = None
        if attention_heads is not None:
            self.attention = Transformer2DModel(
                num_attention_heads=attention_heads, attention_head_dim=widths[-1] // attention_heads,
                in_channels=widths[-1], norm_num_groups=ATTENTION_NORM_GROUPS,
            )
        self.conv_out = nn.Conv2d(widths[-1], out_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _run_layers(self, conditions: torch.Tensor) -> torch.Tensor:
        hidden = F.silu(self.conv_in(conditions))
        for block in self.blocks:
            hidden = F.silu(block(hidden))
        if self.attention is not None:
            hidden = self.attention(hidden, return_dict=False)[0]
        return self.conv_out(hidden)


class ConvStack(_ConvLayers, nn.Module):
    """One map's guider inside a ``per_map`` pose guider."""

    def __init__(
        self, in_channels: int, widths: tuple[int, ...], out_channels: int, attention_heads: int | None = None
    ) -> None:
        nn.Module.__init__(self)
        self._build_layers(in_channels, widths, out_channels, attention_heads)

    def forward(self, conditions: torch.Tensor) -> torch.Tensor:
        return self._run_layers(conditions)


class PoseGuider(_ConvLayers, ModelMixin, ConfigMixin):
    """The pose guider(s) of the two-branch model, with the condition contract they were trained on.

    Args:
        conditioning_channels: channels of the stacked condition maps (7 = depth + normal + skeleton);
            with a contract it must equal the contract's channels.
        block_out_channels: widths of the stages; ``len - 1`` stride-2 convolutions, so 4 widths = 1/8.
        conditioning_embedding_channels: output width; must equal the denoising U-Net's
            ``block_out_channels[0]`` because the output is added to ``conv_in``'s output.
        conditions: the condition contract (``ConditionContract.to_config()``); ``None`` in checkpoints
            saved before contracts, which took posedive's three maps on one guider.
        attention_heads: heads of the transformer block before ``conv_out`` in every stack (the last
            width must divide by them and by 32); ``None``: no block.
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        conditioning_channels: int = 7,
        block_out_channels: tuple[int, ...] = (16, 32, 96, 256),
        conditioning_embedding_channels: int = 320,
        conditions: dict[str, Any] | None = None,
        attention_heads: int | None = None,
    ) -> None:
        super().__init__()
        if conditioning_channels < 1:
            raise CheckpointError(f"pose guider: conditioning_channels must be >= 1, got {conditioning_channels}")
        if len(block_out_channels) < 1 or any(c < 1 for c in block_out_channels):
            raise CheckpointError(f"pose guider: block_out_channels must be positive widths, got {block_out_channels}")
        if attention_heads is not None and (
            attention_heads < 1 or block_out_channels[-1] % attention_heads or block_out_channels[-1] % ATTENTION_NORM_GROUPS
        ):
            raise CheckpointError(
                f"pose guider: attention_heads={attention_heads} needs a last width divisible by it and by "
                f"{ATTENTION_NORM_GROUPS}, got {block_out_channels[-1]}"
            )
        if conditions is not None:
            contract = ConditionContract.from_config(conditions, "pose guider config")
            if contract.channels != conditioning_channels:
                raise CheckpointError(
                    f"pose guider: conditioning_channels={conditioning_channels} but its condition contract's maps "
                    f"have {contract.channels} channels ({contract.describe()})"
                )
        else:
            contract = implied_contract(conditioning_channels, None, "pose guider config")
        self._contract = contract
        widths = tuple(block_out_channels)
        if contract.guiders == "per_map":
            self.guiders = nn.ModuleDict(
                {m.name: ConvStack(m.channels, widths, conditioning_embedding_channels, attention_heads)
                 for m in contract.maps}
            )
        else:
            self._build_layers(conditioning_channels, widths, conditioning_embedding_channels, attention_heads)

    @property
    def contract(self) -> ConditionContract:
        """The condition contract from the config (its resolution as saved; see ``load_generator`` for the
        resolution of checkpoints that kept it in ``posedive_generator.json``)."""
        return self._contract

    def set_contract(self, contract: ConditionContract) -> None:
        """Record a new contract with the same maps and layout (a training run sets the resolution it
        trained at); ``save_pretrained`` writes it."""
        if (contract.maps, contract.guiders) != (self._contract.maps, self._contract.guiders):
            raise CheckpointError(
                f"pose guider built for {self._contract.describe()} cannot take the contract {contract.describe()}"
            )
        self._contract = contract
        self.register_to_config(conditions=contract.to_config())

    @property
    def downscale_factor(self) -> int:
        """How much smaller the output is than the input (must equal the VAE's scale factor)."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(self, conditions: torch.Tensor) -> torch.Tensor:
        """``(B, contract.channels, H, W)`` in [0, 1] -> ``(B, embedding_channels, H/f, W/f)``."""
        if conditions.ndim != 4 or conditions.shape[1] != self.config.conditioning_channels:
            raise InputError(
                f"pose guider expects (B, {self.config.conditioning_channels}, H, W) conditions "
                f"({self._contract.describe()}), got shape {tuple(conditions.shape)}"
            )
        if self._contract.guiders == "concatenated":
            return self._run_layers(conditions)
        outputs = [self.guiders[item.name](conditions[:, channels]) for item, channels in self._contract.channel_slices()]
        return torch.stack(outputs).sum(0)
