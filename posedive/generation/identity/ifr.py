"""Pose2ID's identity feature refiner (IFR): one Re-ID feature vector -> ``num_tokens`` tokens.

The architecture follows Pose2ID (Yuan et al., CVPR 2025; code MIT, yuanc3/Pose2ID): a linear layer
from the TransReID feature (3840 = 5 x 768) to ``num_tokens x token_dim`` (20 x 768), viewed as
tokens, and a LayerNorm (eps 1e-5) over each token. Its released weights (``IFR.pth``) were trained
with the Market-1501-derived TransReID features. :func:`convert_ifr` maps that file strictly.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ...errors import CheckpointError
from ..state_dicts import Conversion, convert_state_dict, module_shapes, strip_data_parallel_prefix

_IFR_KEYS = {"proj_motion.weight": "projection.weight", "proj_motion.bias": "projection.bias",
             "norm_motion.weight": "norm.weight", "norm_motion.bias": "norm.bias"}


class IdentityFeatureRefiner(nn.Module):
    """``(B, in_features)`` -> ``(B, num_tokens, token_dim)``: linear, split into tokens, LayerNorm."""

    def __init__(
        self, in_features: int = 3840, num_tokens: int = 20, token_dim: int = 768, norm_eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.projection = nn.Linear(in_features, num_tokens * token_dim)
        self.norm = nn.LayerNorm(token_dim, eps=norm_eps)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = self.projection(features).unflatten(-1, (self.num_tokens, -1))
        return self.norm(tokens)


def convert_ifr(state_dict: Mapping[str, torch.Tensor], source: str = "IFR.pth") -> Conversion:
    """Pose2ID's ``IFR.pth`` state dict -> the :class:`IdentityFeatureRefiner` arguments (read from the
    shapes: ``in_features``, ``num_tokens``, ``token_dim``) and state dict; strict like every converter."""
    plain = strip_data_parallel_prefix(state_dict, source)
    try:
        out_features, in_features = plain["proj_motion.weight"].shape
        (token_dim,) = plain["norm_motion.weight"].shape
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{source}: not a Pose2ID IFR state dict (proj_motion.weight (N*D, F) and "
                              f"norm_motion.weight (D,) expected): {error!r}") from None
    if token_dim < 1 or out_features % token_dim:
        raise CheckpointError(f"{source}: proj_motion.weight has {out_features} outputs, not a multiple of the "
                              f"{token_dim} of norm_motion.weight")
    config = {"in_features": int(in_features), "num_tokens": out_features // token_dim, "token_dim": int(token_dim)}
    with torch.device("meta"):
        expected = module_shapes(IdentityFeatureRefiner(**config))
    converted, report = convert_state_dict(plain, _IFR_KEYS.get, expected, unused=(), source=source)
    return Conversion(config=config, state_dict=converted, reports=(report,))
