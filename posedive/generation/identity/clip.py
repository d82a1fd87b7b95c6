"""CLIP image embedding as the identity token: what posedive, Moore-AnimateAnyone and Champ use.

One token per reference, ``CLIPVisionModelWithProjection(...).image_embeds`` (768-d for the ViT-L/14
tower of ``lambdalabs/sd-image-variations-diffusers``), and zeros as the unconditional token. How the
reference reaches CLIP's 224x224 input is part of the config (:class:`ClipPreprocessing`): ``squash``
(the default, as the released models were trained) resizes the whole crop to a square; ``crop``
(what posedive did before) keeps only its centre square, i.e. on a 1:2 pedestrian no head and no feet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401 - see below
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from ...errors import CheckpointError, InputError
from ..state_dicts import Conversion, UnusedKeys, convert_state_dict, module_shapes, public_config
from .base import IdentityEncoder, UnconditionalKind
from .preprocessing import CLIP_MEAN, CLIP_RESIZE_MODES, CLIP_STD, ClipPreprocessing, ClipResizeMode

# DiffusionPipeline.from_pretrained finds a saved component's loader through the names of the module that
# model_index.json names (this one): without ModelMixin here a generator folder holding this encoder cannot load

if TYPE_CHECKING:
    from transformers import CLIPImageProcessorPil

# The CLIPVisionConfig fields that define the network; a saved encoder records every one of them.
CLIP_ARCHITECTURE_FIELDS: tuple[str, ...] = (
    "hidden_size",
    "intermediate_size",
    "projection_dim",
    "num_hidden_layers",
    "num_attention_heads",
    "num_channels",
    "image_size",
    "patch_size",
    "hidden_act",
    "layer_norm_eps",
)
CLIP_UNUSED_KEYS: tuple[UnusedKeys, ...] = (
    UnusedKeys(
        pattern=r"vision_model\.embeddings\.position_ids",
        reason="position index buffer (0..N-1) that transformers < 4.31 saved; rebuilt from the config",
    ),
)


def clip_architecture(config: CLIPVisionConfig) -> dict[str, Any]:
    """The architecture fields of a ``CLIPVisionConfig``."""
    return {name: getattr(config, name) for name in CLIP_ARCHITECTURE_FIELDS}


class ClipIdentityEncoder(IdentityEncoder):
    """CLIP vision tower with projection; one identity token; zeros for the unconditional branch.

    Args:
        vision_config: the CLIP vision architecture (:data:`CLIP_ARCHITECTURE_FIELDS`).
        preprocessing: ``squash`` or ``crop`` (see the module docstring).
        image_mean, image_std: CLIP's input normalisation.
    """

    kind: ClassVar[str] = "clip-image-embedding"
    unconditional: ClassVar[UnconditionalKind] = "zeros"

    @register_to_config
    def __init__(
        self,
        vision_config: dict[str, Any],
        preprocessing: ClipResizeMode = "squash",
        image_mean: tuple[float, float, float] = CLIP_MEAN,
        image_std: tuple[float, float, float] = CLIP_STD,
    ) -> None:
        super().__init__()
        unknown = sorted(set(vision_config) - set(CLIP_ARCHITECTURE_FIELDS))
        if unknown:
            raise InputError(f"CLIP identity encoder: vision_config has unknown fields {unknown}",
                             hint=f"give only {', '.join(CLIP_ARCHITECTURE_FIELDS)}")
        if preprocessing not in CLIP_RESIZE_MODES:
            raise InputError(f"CLIP identity encoder: preprocessing {preprocessing!r} is not one of "
                             f"{', '.join(CLIP_RESIZE_MODES)}")
        self.vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**vision_config))
        self.register_to_config(vision_config=clip_architecture(self.vision.config))

    @property
    def preprocessor(self) -> ClipPreprocessing:
        return ClipPreprocessing(
            mode=self.config.preprocessing,
            size=self.vision.config.image_size,
            mean=tuple(self.config.image_mean),
            std=tuple(self.config.image_std),
        )

    @property
    def num_tokens(self) -> int:
        return 1

    @property
    def token_dim(self) -> int:
        return self.vision.config.projection_dim

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pixel_values = pixel_values.to(device=self.device, dtype=self.dtype)
        return self.vision(pixel_values).image_embeds[:, None]

    def unconditional_tokens(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, 1, self.token_dim, device=self.device, dtype=self.dtype)

    @classmethod
    def from_clip(
        cls,
        image_encoder: CLIPVisionModelWithProjection,
        feature_extractor: "CLIPImageProcessorPil | None" = None,
        *,
        preprocessing: ClipResizeMode,
    ) -> "ClipIdentityEncoder":
        """Wrap a loaded CLIP tower (its weights are taken over, not copied). The resize is the caller's
        choice because the tower does not record it: the ``image_encoder`` / ``feature_extractor`` pair of a
        generator saved before identity encoders existed was trained with ``"crop"``. The feature
        extractor's mean and std are kept; its input size must be the tower's."""
        mean, std = CLIP_MEAN, CLIP_STD
        if feature_extractor is not None:
            size = image_encoder.config.image_size
            sizes = (feature_extractor.size.get("shortest_edge"), feature_extractor.crop_size.get("height"),
                     feature_extractor.crop_size.get("width"))
            if sizes != (size, size, size):
                raise CheckpointError(
                    f"feature_extractor resizes to shortest edge {sizes[0]} and crops {sizes[1]}x{sizes[2]}, but the "
                    f"image encoder takes {size}x{size} images"
                )
            mean, std = tuple(feature_extractor.image_mean), tuple(feature_extractor.image_std)
        conversion = convert_clip_vision(
            image_encoder.state_dict(), clip_architecture(image_encoder.config), preprocessing, source="image_encoder"
        )
        # the parameters become the tower's own tensors, so the encoder keeps its dtype and device
        return Conversion(
            config=conversion.config | {"image_mean": mean, "image_std": std},
            state_dict=conversion.state_dict,
            reports=conversion.reports,
        ).build(cls).eval()


def convert_clip_vision(
    state_dict: Mapping[str, torch.Tensor],
    vision_config: Mapping[str, Any],
    preprocessing: ClipResizeMode = "squash",
    source: str = "image_encoder",
) -> Conversion:
    """A transformers ``CLIPVisionModelWithProjection`` state dict (e.g. ``image_encoder/model.safetensors``
    of ``lambdalabs/sd-image-variations-diffusers``) and its architecture (``vision_config``: fields of
    :data:`CLIP_ARCHITECTURE_FIELDS`, the rest at transformers' defaults) -> the full config and the state
    dict of :class:`ClipIdentityEncoder`."""
    with torch.device("meta"):
        model = ClipIdentityEncoder(dict(vision_config), preprocessing)
    known = ("vision_model.", "visual_projection.")
    converted, report = convert_state_dict(
        state_dict,
        rename=lambda key: "vision." + key if key.startswith(known) else None,
        expected=module_shapes(model),
        unused=CLIP_UNUSED_KEYS,
        source=source,
    )
    return Conversion(config=public_config(model.config), state_dict=converted, reports=(report,))
