"""The identity-encoder interface: reference images -> the tokens the U-Nets' cross-attention reads.

Stable Diffusion's cross-attention reads text tokens; a two-branch person generator replaces them
with tokens of the reference person. Which tokens, and what classifier-free guidance's unconditional
branch reads instead, is a property of the trained generator, so each encoder is a saved component
of the generator folder (``identity_encoder/``: ``config.json`` with every number, and the weights),
loadable offline with ``from_pretrained``:

* ``preprocessor``: the one image -> pixel-value function training and inference both use;
* ``encode(pixel_values)`` -> ``(B, num_tokens, token_dim)``;
* ``unconditional_tokens(batch_size)`` -> the tokens of the unconditional branch;
* ``spec()``: what the encoder is, for the generator's config and the provenance of every image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Sequence

import torch
from diffusers.configuration_utils import ConfigMixin
from diffusers.models.modeling_utils import ModelMixin
from pydantic import BaseModel, ConfigDict, Field

from .preprocessing import ClipPreprocessing, ImagePreprocessing, ReidPreprocessing

if TYPE_CHECKING:
    import PIL.Image

UnconditionalKind = Literal["zeros", "encoded-blank-image"]


class IdentityEncoderSpec(BaseModel):
    """What an identity encoder gives the U-Nets (stored in generator configs and provenance)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(description="the encoder's stable name, e.g. clip-image-embedding or transreid-ifr")
    num_tokens: int
    token_dim: int = Field(description="must equal the U-Nets' cross_attention_dim")
    unconditional: UnconditionalKind = Field(
        description="zeros, or the tokens of an all-zero normalised image (what Pose2ID uses)"
    )
    preprocessing: ClipPreprocessing | ReidPreprocessing = Field(discriminator="kind")


class IdentityEncoder(ModelMixin, ConfigMixin):
    """Base of posedive's identity encoders; subclasses register their config with ``@register_to_config``."""

    kind: ClassVar[str]
    unconditional: ClassVar[UnconditionalKind]
    _supports_gradient_checkpointing = False

    @property
    def preprocessor(self) -> ImagePreprocessing:
        raise NotImplementedError

    @property
    def num_tokens(self) -> int:
        raise NotImplementedError

    @property
    def token_dim(self) -> int:
        raise NotImplementedError

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` pixel values from :attr:`preprocessor` -> ``(B, num_tokens, token_dim)``."""
        raise NotImplementedError

    def unconditional_tokens(self, batch_size: int) -> torch.Tensor:
        """``(batch_size, num_tokens, token_dim)`` tokens of classifier-free guidance's unconditional branch."""
        raise NotImplementedError

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.encode(pixel_values)

    def encode_images(self, images: Sequence["PIL.Image.Image"]) -> torch.Tensor:
        """Reference images of any size -> tokens (preprocessing included)."""
        return self.encode(self.preprocessor(images))

    def guidance_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[unconditional; tokens]``: the cross-attention batch of one classifier-free-guidance step,
        unconditional rows first as in the pipeline's ``[uncond, cond]`` order."""
        return torch.cat([self.unconditional_tokens(tokens.shape[0]).to(tokens), tokens])

    def keep_or_unconditional(self, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Rows where the boolean ``keep`` is False get the unconditional tokens (reference dropout)."""
        unconditional = self.unconditional_tokens(tokens.shape[0]).to(tokens)
        return torch.where(keep.to(tokens.device)[:, None, None], tokens, unconditional)

    def spec(self) -> IdentityEncoderSpec:
        return IdentityEncoderSpec(
            kind=self.kind,
            num_tokens=self.num_tokens,
            token_dim=self.token_dim,
            unconditional=self.unconditional,
            preprocessing=self.preprocessor,
        )

