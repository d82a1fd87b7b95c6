"""Pose2ID's identity tokens: TransReID features of the reference, refined into 20 tokens by IFR.

The identity path of Pose2ID's IPG generator (Yuan et al., CVPR 2025; code MIT, yuanc3/Pose2ID):
the reference is resized to 128x256 (PIL Lanczos) and normalised to [-1, 1], TransReID
(:class:`~posedive.generation.identity.transreid.TransReIDViT`) gives one 3840-d feature, and IFR
(:class:`~posedive.generation.identity.ifr.IdentityFeatureRefiner`) turns it into 20 tokens of 768.
The unconditional tokens of classifier-free guidance are the tokens of an all-zero *normalised* image
(mid-grey), not zeros: IPG was trained and is run that way.

Weights: ``transformer_20.pth`` and ``IFR.pth`` of ``yuanc3/Pose2ID`` derive from Market-1501
(research-only terms). :func:`convert_pose2id_identity` maps both files strictly onto
:class:`TransReIDIdentityEncoder`, which saves as one ``identity_encoder/`` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401 - see below

from ...errors import CheckpointError
from ..state_dicts import Conversion, prefixed, public_config, read_state_dict
from .base import IdentityEncoder, UnconditionalKind
from .ifr import IdentityFeatureRefiner, convert_ifr
from .preprocessing import ReidPreprocessing
from .transreid import TransReIDViT, convert_transreid

# DiffusionPipeline.from_pretrained finds a saved component's loader through the names of the module that
# model_index.json names (this one): without ModelMixin here a generator folder holding this encoder cannot load


class TransReIDIdentityEncoder(IdentityEncoder):
    """TransReID ViT + IFR; the defaults are Pose2ID's released sizes.

    Args:
        vit_config: :class:`TransReIDViT` arguments (the saved config always holds all of them).
        num_tokens, token_dim, refiner_norm_eps: the IFR.
        image_mean, image_std: the normalisation of the ViT's input.
    """

    kind: ClassVar[str] = "transreid-ifr"
    unconditional: ClassVar[UnconditionalKind] = "encoded-blank-image"

    @register_to_config
    def __init__(
        self,
        vit_config: dict[str, Any] | None = None,
        num_tokens: int = 20,
        token_dim: int = 768,
        refiner_norm_eps: float = 1e-5,
        image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
        image_std: tuple[float, float, float] = (0.5, 0.5, 0.5),
    ) -> None:
        super().__init__()
        self.vit = TransReIDViT(**(vit_config or {}))
        self.refiner = IdentityFeatureRefiner(self.vit.feature_dim, num_tokens, token_dim, refiner_norm_eps)
        self.register_to_config(vit_config=public_config(self.vit.config))

    @property
    def preprocessor(self) -> ReidPreprocessing:
        height, width = self.vit.config.image_size
        return ReidPreprocessing(
            width=width, height=height, mean=tuple(self.config.image_mean), std=tuple(self.config.image_std)
        )

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    @property
    def token_dim(self) -> int:
        return self.config.token_dim

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.refiner(self.vit(pixel_values.to(device=self.device, dtype=self.dtype)))

    def unconditional_tokens(self, batch_size: int) -> torch.Tensor:
        height, width = self.vit.config.image_size
        blank = torch.zeros(1, 3, height, width, device=self.device, dtype=self.dtype)
        return self.encode(blank).expand(batch_size, -1, -1)

    @classmethod
    def from_pose2id(
        cls, transreid_path: Path | str, ifr_path: Path | str, architecture: Mapping[str, Any] | None = None
    ) -> "TransReIDIdentityEncoder":
        """Build from Pose2ID's released ``transformer_20.pth`` and ``IFR.pth``
        (see :func:`convert_pose2id_identity`)."""
        conversion = convert_pose2id_identity(
            read_state_dict(transreid_path), read_state_dict(ifr_path), architecture,
            sources=(Path(transreid_path).name, Path(ifr_path).name),
        )
        return conversion.build(cls).eval()


def convert_pose2id_identity(
    transreid_state_dict: Mapping[str, torch.Tensor],
    ifr_state_dict: Mapping[str, torch.Tensor],
    architecture: Mapping[str, Any] | None = None,
    sources: tuple[str, str] = ("transformer_20.pth", "IFR.pth"),
) -> Conversion:
    """Pose2ID's TransReID and IFR state dicts -> the config and state dict of :class:`TransReIDIdentityEncoder`.

    ``architecture``: :class:`TransReIDViT` arguments that differ from the released ViT-B/16. The IFR's
    sizes come from its shapes, and its input must be the ViT's feature width.
    """
    vit = convert_transreid(transreid_state_dict, architecture, source=sources[0])
    refiner = convert_ifr(ifr_state_dict, source=sources[1])
    with torch.device("meta"):
        feature_dim = TransReIDViT(**vit.config).feature_dim
    if refiner.config["in_features"] != feature_dim:
        raise CheckpointError(
            f"{sources[1]} takes {refiner.config['in_features']}-d features but {sources[0]} gives {feature_dim}-d "
            f"ones", hint="convert the two files of one release, with the architecture they were trained with",
        )
    config = {
        "vit_config": vit.config,
        "num_tokens": refiner.config["num_tokens"],
        "token_dim": refiner.config["token_dim"],
    }
    state_dict = prefixed(vit.state_dict, "vit.") | prefixed(refiner.state_dict, "refiner.")
    return Conversion(config=config, state_dict=state_dict, reports=vit.reports + refiner.reports)
