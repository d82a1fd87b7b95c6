"""The BoT strong baseline (Luo et al., 2019): ResNet-50 with last stride 1 and a BNNeck.

The backbone is ``transformers``' ``ResNetModel``. Its config has no last-stride option, so the stride-2
convolutions of the first block of the last stage (the 3x3 or 1x1 conv and the shortcut) are set to
stride 1 after construction: convolution weights do not depend on stride, so ImageNet weights still
load, and a 256x128 input gives a 16x8 final map instead of 8x4.

BNNeck: the globally pooled feature ``f_t`` feeds the triplet loss; a BatchNorm1d (bias frozen at 0)
gives ``f_i``, which feeds a bias-free classifier (cross-entropy) and is the retrieval feature.

A model is saved as ``config.json`` (the constructor's arguments) and ``model.safetensors`` and loaded
with every key required.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import PathNotFound

logger = logging.getLogger(__name__)

PRETRAINED_RESNET50 = "microsoft/resnet-50"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def set_last_stride(backbone: nn.Module, stride: int) -> None:
    """Set the stride of the first block of the last ResNet stage (where transformers puts the downsampling)."""
    block = backbone.encoder.stages[-1].layers[0]
    changed = 0
    for module in block.modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (stride, stride)
            changed += 1
    if changed == 0 and stride != 1:
        raise ValueError("the last ResNet stage does not downsample; its stride cannot be changed")


class BagOfTricks(nn.Module):
    """ResNet backbone + global average pooling + BNNeck + classifier."""

    def __init__(self, num_classes: int, resnet_config: dict[str, Any] | None = None, last_stride: int = 1):
        from transformers import ResNetConfig, ResNetModel

        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.config = {"num_classes": num_classes, "resnet_config": dict(resnet_config or {}), "last_stride": last_stride}
        self.backbone = ResNetModel(ResNetConfig(**self.config["resnet_config"]))
        set_last_stride(self.backbone, last_stride)
        dim = self.backbone.config.hidden_sizes[-1]
        self.feature_dim = dim
        self.bottleneck = nn.BatchNorm1d(dim)
        self.bottleneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.ones_(self.bottleneck.weight)
        nn.init.zeros_(self.bottleneck.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        """Training: ``(logits, f_t)`` for the two losses. Evaluation: ``f_i``, the feature after BN."""
        feature_map = self.backbone(pixel_values=images).last_hidden_state
        global_feature = feature_map.mean(dim=(2, 3))
        bn_feature = self.bottleneck(global_feature)
        if self.training:
            return self.classifier(bn_feature), global_feature
        return bn_feature

    @classmethod
    def build(cls, num_classes: int, backbone: str | None = PRETRAINED_RESNET50,
              resnet_config: dict[str, Any] | None = None, last_stride: int = 1) -> "BagOfTricks":
        """A model whose backbone starts from ``backbone``'s ImageNet weights when they can be loaded.

        ``backbone=None`` builds from ``resnet_config`` with random weights (used for tiny test models).
        When the weights cannot be fetched (offline), says so and starts from random weights.
        """
        if backbone is None:
            return cls(num_classes, resnet_config, last_stride)
        from transformers import ResNetModel

        try:
            pretrained = ResNetModel.from_pretrained(backbone)
        except OSError as error:
            logger.warning("ImageNet weights %s could not be loaded (%s); starting from random weights, "
                           "which gives far lower accuracy than the published baseline",
                           backbone, str(error).splitlines()[0])
            # ResNetConfig's defaults are ResNet-50's architecture.
            return cls(num_classes, resnet_config, last_stride)
        model = cls(num_classes, pretrained.config.to_diff_dict(), last_stride)
        model.backbone.load_state_dict(pretrained.state_dict(), strict=True)
        logger.info("backbone initialised from %s", backbone)
        return model

    def save(self, directory: Path | str) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps(self.config, indent=2, sort_keys=True) + "\n")
        state = {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))

    @classmethod
    def load(cls, directory: Path | str) -> "BagOfTricks":
        from safetensors.torch import load_file

        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise PathNotFound(f"{directory}: no {name}; not a model saved by `posedive reid train`",
                                   hint="give a folder written by `posedive reid train --out`")
        model = cls(**json.loads((directory / CONFIG_FILE).read_text()))
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)
        return model

