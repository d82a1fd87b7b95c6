"""BoT image transforms in torch alone (torchvision does not import beside the CPU torch build used here).

Training: resize to 256x128, random horizontal flip, zero padding of 10 pixels and a random crop back
to size, normalisation with ImageNet statistics, random erasing. Test: resize and normalise.
Randomness comes from torch's default generator, which the engine seeds and the DataLoader reseeds per
worker, so a run is reproducible from its seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor(image) -> torch.Tensor:
    """RGB PIL image (or HWC uint8 array) -> float CHW tensor in [0, 1]."""
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got an array of shape {array.shape}")
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def normalize(image: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    return (image - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def random_erasing(image: torch.Tensor, p: float = 0.5, area: tuple[float, float] = (0.02, 0.4),
                   aspect: float = 0.3, tries: int = 100) -> torch.Tensor:
    """Zhong et al. 2020: erase one random rectangle (with the mean pixel, i.e. 0 after normalising)."""
    if torch.rand(()) >= p:
        return image
    _, height, width = image.shape
    for _ in range(tries):
        target = float(torch.empty(()).uniform_(*area)) * height * width
        ratio = math.exp(float(torch.empty(()).uniform_(math.log(aspect), math.log(1 / aspect))))
        h, w = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < h < height and 0 < w < width:
            top = int(torch.randint(0, height - h + 1, ()))
            left = int(torch.randint(0, width - w + 1, ()))
            image = image.clone()
            image[:, top:top + h, left:left + w] = 0.0
            return image
    return image


class TrainTransform:
    def __init__(self, height: int = 256, width: int = 128, flip_p: float = 0.5, pad: int = 10, erase_p: float = 0.5):
        self.size, self.flip_p, self.pad, self.erase_p = (height, width), flip_p, pad, erase_p

    def __call__(self, image) -> torch.Tensor:
        x = resize(to_tensor(image), self.size)
        if torch.rand(()) < self.flip_p:
            x = torch.flip(x, dims=[2])
        if self.pad:
            x = F.pad(x, (self.pad, self.pad, self.pad, self.pad))
            top = int(torch.randint(0, 2 * self.pad + 1, ()))
            left = int(torch.randint(0, 2 * self.pad + 1, ()))
            x = x[:, top:top + self.size[0], left:left + self.size[1]]
        return random_erasing(normalize(x), p=self.erase_p)


class EvalTransform:
    def __init__(self, height: int = 256, width: int = 128):
        self.size = (height, width)

    def __call__(self, image) -> torch.Tensor:
        return normalize(resize(to_tensor(image), self.size))
