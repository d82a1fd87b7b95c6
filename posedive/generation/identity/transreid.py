"""posedive's TransReID ViT-B/16 with the jigsaw patch module: a person crop -> a Re-ID feature vector.

The architecture follows TransReID (He et al., ICCV 2021; code MIT, damo-cv/TransReID) as Pose2ID
(MIT, yuanc3/Pose2ID) uses it for identity tokens, re-implemented here from the paper and the code's
behaviour: overlapping 16x16 patches with stride 12 on a 256x128 crop (21 x 10 = 210 patches), a
class token and learned position embeddings, pre-norm transformer blocks (LayerNorm eps 1e-6, exact
GELU), no side-information (camera/view) embedding. The trunk is the ViT minus its last block; the
last block and the final norm exist twice, trained separately:

* the global branch runs on all tokens; its class token is the global feature;
* the jigsaw patch module (JPM) rolls the patch tokens by ``shift - 1`` (the class token stays out),
  interleaves ``groups`` equal slices of them, cuts the result into ``parts`` runs of
  ``num_patches // parts`` tokens (the remainder is dropped), and runs the local branch on each run
  with the trunk's class token in front; each run's class token is a local feature.

The output is ``[global, local_1 / parts, ..., local_parts / parts]`` (``(1 + parts) x 768`` = 3840 at
full size), the feature before the BNNeck batch norms (TransReID's ``TEST.NECK_FEAT 'before'``).

The released Pose2ID weights (``transformer_20.pth``) were trained on Market-1501, whose terms allow
research use only; images made with them inherit that restriction. :func:`convert_transreid` maps
that file onto this module, strictly.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from torch.nn import functional as F

from ...errors import CheckpointError, InputError
from ..state_dicts import (
    Conversion,
    UnusedKeys,
    convert_state_dict,
    module_shapes,
    public_config,
    strip_data_parallel_prefix,
)


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused query/key/value projection."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, dim = hidden.shape
        qkv = self.qkv(hidden).view(batch, length, 3, self.num_heads, dim // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attended = F.scaled_dot_product_attention(query, key, value)
        return self.proj(attended.transpose(1, 2).reshape(batch, length, dim))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(hidden)))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, norm_eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = SelfAttention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.attn(self.norm1(hidden))
        return hidden + self.mlp(self.norm2(hidden))


class Branch(nn.Module):
    """One head of the ViT: its last block and final norm."""

    def __init__(self, block: TransformerBlock, norm: nn.LayerNorm) -> None:
        super().__init__()
        self.block = block
        self.norm = norm

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(self.block(tokens))


class TransReIDViT(ModelMixin, ConfigMixin):
    """TransReID ViT with the jigsaw patch module; the defaults are the released ViT-B/16 (Pose2ID).

    Args:
        image_size: input ``(height, width)``.
        patch_size: side of the square patches.
        patch_stride: step between patches (smaller than ``patch_size``: patches overlap).
        embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps: the transformer blocks.
        depth: blocks of the ViT, counting the last one (which only the two branches run).
        jpm_shift, jpm_groups, jpm_parts: the jigsaw patch module (see the module docstring).
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        image_size: tuple[int, int] = (256, 128),
        patch_size: int = 16,
        patch_stride: int = 12,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        jpm_shift: int = 5,
        jpm_groups: int = 2,
        jpm_parts: int = 4,
    ) -> None:
        super().__init__()
        height, width = image_size
        if min(height, width) < patch_size or patch_stride < 1:
            raise InputError(f"TransReID: image_size {tuple(image_size)} and patch_size {patch_size} / stride "
                             f"{patch_stride} give no patches")
        self.grid = ((height - patch_size) // patch_stride + 1, (width - patch_size) // patch_stride + 1)
        num_patches = self.grid[0] * self.grid[1]
        if embed_dim % num_heads:
            raise InputError(f"TransReID: embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        if depth < 1:
            raise InputError(f"TransReID: depth must be >= 1, got {depth}")
        if jpm_groups < 1 or num_patches % jpm_groups:
            raise InputError(f"TransReID: {num_patches} patches do not split into jpm_groups={jpm_groups} equal groups")
        if not 1 <= jpm_parts <= num_patches or not 1 <= jpm_shift <= num_patches:
            raise InputError(f"TransReID: jpm_parts={jpm_parts} and jpm_shift={jpm_shift} must be in 1..{num_patches}")

        def block() -> TransformerBlock:
            return TransformerBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps)

        self.patch_embedding = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_stride)
        self.class_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.position_embedding = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dim))
        self.blocks = nn.ModuleList(block() for _ in range(depth - 1))
        self.global_branch = Branch(block(), nn.LayerNorm(embed_dim, eps=norm_eps))
        self.local_branch = Branch(block(), nn.LayerNorm(embed_dim, eps=norm_eps))

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def feature_dim(self) -> int:
        return (1 + self.config.jpm_parts) * self.config.embed_dim

    def trunk_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 1 + num_patches, D)``: class token and patches after every block but the last."""
        height, width = self.config.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (3, height, width):
            raise InputError(
                f"TransReID expects (B, 3, {height}, {width}) pixel values, got {tuple(pixel_values.shape)}"
            )
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(patches.shape[0], -1, -1), patches], dim=1)
        tokens = tokens + self.position_embedding
        for block in self.blocks:
            tokens = block(tokens)
        return tokens

    def jigsaw_parts(self, tokens: torch.Tensor) -> torch.Tensor:
        """Trunk tokens -> ``(B, parts, 1 + run, D)``: each run of shuffled patches behind the class token."""
        batch, _, dim = tokens.shape
        shift, groups, parts = self.config.jpm_shift, self.config.jpm_groups, self.config.jpm_parts
        patches = tokens[:, 1:].roll(-(shift - 1), dims=1)
        shuffled = patches.view(batch, groups, -1, dim).transpose(1, 2).reshape(batch, -1, dim)
        run = self.num_patches // parts
        runs = shuffled[:, : parts * run].reshape(batch, parts, run, dim)
        class_token = tokens[:, None, :1].expand(batch, parts, 1, dim)
        return torch.cat([class_token, runs], dim=2)

    def branch_features(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Trunk tokens -> the global feature ``(B, D)`` and the local features ``(B, parts, D)``."""
        global_feature = self.global_branch(tokens)[:, 0]
        runs = self.jigsaw_parts(tokens)
        batch, parts, length, dim = runs.shape
        local = self.local_branch(runs.reshape(batch * parts, length, dim))[:, 0]
        return global_feature, local.view(batch, parts, dim)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` normalised pixels -> ``(B, (1 + parts) * D)`` Re-ID features."""
        global_feature, local = self.branch_features(self.trunk_tokens(pixel_values))
        parts = self.config.jpm_parts
        return torch.cat([global_feature, (local / parts).flatten(1)], dim=1)


def transreid_unused_keys(depth: int) -> tuple[UnusedKeys, ...]:
    """Keys of a TransReID ``build_transformer_local`` checkpoint that inference does not use."""
    return (
        UnusedKeys(
            pattern=rf"base\.blocks\.{depth - 1}\..+",
            reason="the backbone's last block: with the jigsaw patch module TransReID runs every block but the "
            "last, and the global and local branches (b1, b2) hold their own trained copies of it",
        ),
        UnusedKeys(pattern=r"base\.norm\..+", reason="the backbone's final norm, skipped for the same reason; "
                   "b1 and b2 carry their own"),
        UnusedKeys(pattern=r"base\.fc\..+", reason="ImageNet classification head (1000 classes), never called"),
        UnusedKeys(pattern=r"classifier(_\d+)?\.weight", reason="identity classifiers over the Market-1501 "
                   "training identities: training loss only"),
        UnusedKeys(
            pattern=r"bottleneck(_\d+)?\.(weight|bias|running_mean|running_var|num_batches_tracked)",
            reason="BNNeck batch norms: computed in eval mode, but with TEST.NECK_FEAT 'before' their outputs "
            "are dropped",
        ),
    )


_BRANCHES = {"b1.0.": "global_branch.block.", "b1.1.": "global_branch.norm.",
             "b2.0.": "local_branch.block.", "b2.1.": "local_branch.norm."}
_TRUNK = {
    "base.cls_token": "class_token",
    "base.pos_embed": "position_embedding",
    "base.patch_embed.proj.weight": "patch_embedding.weight",
    "base.patch_embed.proj.bias": "patch_embedding.bias",
}


def _transreid_key(key: str, depth: int) -> str | None:
    if key in _TRUNK:
        return _TRUNK[key]
    for prefix, target in _BRANCHES.items():
        if key.startswith(prefix):
            return target + key.removeprefix(prefix)
    if key.startswith("base.blocks."):
        index, _, rest = key.removeprefix("base.blocks.").partition(".")
        if index.isdigit() and int(index) < depth - 1:
            return f"blocks.{index}.{rest}"
    return None


def _architecture_in(state_dict: Mapping[str, torch.Tensor], source: str) -> dict[str, Any]:
    """The architecture numbers a TransReID state dict shows in its keys and shapes (not the heads, the
    stride or the image size: the position embedding's length only checks those)."""
    try:
        embed_dim = state_dict["base.cls_token"].shape[-1]
        patch_size = state_dict["base.patch_embed.proj.weight"].shape[-1]
        hidden = state_dict["base.blocks.0.mlp.fc1.weight"].shape[0]
    except KeyError as error:
        raise CheckpointError(f"{source}: not a TransReID state dict (no {error.args[0]!r})") from None
    blocks = {int(match.group(1)) for key in state_dict if (match := re.match(r"base\.blocks\.(\d+)\.", key))}
    return {
        "embed_dim": int(embed_dim),
        "patch_size": int(patch_size),
        "depth": max(blocks) + 1,
        "mlp_ratio": hidden / embed_dim,
        "qkv_bias": "base.blocks.0.attn.qkv.bias" in state_dict,
    }


def convert_transreid(
    state_dict: Mapping[str, torch.Tensor],
    architecture: Mapping[str, Any] | None = None,
    source: str = "transformer_20.pth",
) -> Conversion:
    """A TransReID ``build_transformer_local`` state dict (keys optionally behind ``module.``) -> the
    config and state dict of :class:`TransReIDViT`.

    The width, depth, patch size, MLP ratio and qkv bias are read from the file; ``architecture`` holds
    the other :class:`TransReIDViT` arguments where they differ from the released ViT-B/16 (the number
    of heads cannot be read from the shapes), and must agree with the file where it repeats one of
    those. Every key is mapped, with its shape checked, or is one of :func:`transreid_unused_keys`;
    anything else raises :class:`~posedive.errors.CheckpointError`.
    """
    plain = strip_data_parallel_prefix(state_dict, source)
    given = dict(architecture or {})
    read = _architecture_in(plain, source)
    conflicts = [f"{name}={given[name]!r} but the file has {value!r}" for name, value in read.items()
                 if name in given and given[name] != value]
    if conflicts:
        raise CheckpointError(f"{source}: the architecture given does not match the file: {'; '.join(conflicts)}")
    with torch.device("meta"):
        model = TransReIDViT(**(read | given))
    depth = model.config.depth
    converted, report = convert_state_dict(
        plain,
        rename=lambda key: _transreid_key(key, depth),
        expected=module_shapes(model),
        unused=transreid_unused_keys(depth),
        source=source,
    )
    return Conversion(config=public_config(model.config), state_dict=converted, reports=(report,))

