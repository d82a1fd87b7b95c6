"""Reference image -> pixel values, as each identity encoder was trained to see them.

Training and inference call the same object: an encoder's ``preprocessor`` (a small frozen Pydantic
model, so data-loader workers can receive it without the weights). Its settings are part of the
encoder's config, so a saved encoder always preprocesses the way it was trained.

* :class:`ClipPreprocessing`: CLIP's 224x224 input. ``squash`` resizes the whole reference to a square
  (PIL bicubic), as Moore-AnimateAnyone and Champ do before their default ``CLIPImageProcessor``.
  ``crop`` is the processor alone: shortest side to 224, then the centre square, which on a 1:2
  pedestrian crop keeps rows 25-75% only (no head, no feet); kept for encoders trained that way.
* :class:`ReidPreprocessing`: TransReID's input as Pose2ID feeds it: PIL Lanczos resize to 128x256,
  then [0, 1] and ``(x - 0.5) / 0.5`` per channel (torchvision's ``ToTensor`` + ``Normalize``,
  written with torch alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Sequence, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import PIL.Image
    import torch

CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
ClipResizeMode = Literal["squash", "crop"]
CLIP_RESIZE_MODES: tuple[str, ...] = get_args(ClipResizeMode)


class ClipPreprocessing(BaseModel):
    """CLIP image-encoder input: ``(B, 3, size, size)`` float32, normalised with CLIP's mean and std."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["clip"] = "clip"
    mode: ClipResizeMode = Field("squash", description="squash: whole image to a square; crop: centre square")
    size: int = Field(224, ge=1)
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def __call__(self, images: Sequence["PIL.Image.Image"]) -> "torch.Tensor":
        import PIL.Image
        from transformers import CLIPImageProcessorPil

        rgb = [image.convert("RGB") for image in images]
        if self.mode == "squash":
            # once square at the model's size, the processor's resize and centre crop change nothing
            rgb = [image.resize((self.size, self.size), PIL.Image.Resampling.BICUBIC) for image in rgb]
        processor = CLIPImageProcessorPil(
            size={"shortest_edge": self.size},
            crop_size={"height": self.size, "width": self.size},
            image_mean=list(self.mean),
            image_std=list(self.std),
        )
        return processor(images=rgb, return_tensors="pt").pixel_values


class ReidPreprocessing(BaseModel):
    """Re-ID ViT input: ``(B, 3, height, width)`` float32, ``(x / 255 - mean) / std``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["reid"] = "reid"
    width: int = Field(128, ge=1)
    height: int = Field(256, ge=1)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __call__(self, images: Sequence["PIL.Image.Image"]) -> "torch.Tensor":
        import PIL.Image
        import torch

        arrays = [
            np.asarray(image.convert("RGB").resize((self.width, self.height), PIL.Image.Resampling.LANCZOS))
            for image in images
        ]
        pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        return pixels.sub(mean).div(std)


ImagePreprocessing = ClipPreprocessing | ReidPreprocessing
