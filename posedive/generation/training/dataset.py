"""Training pairs as tensors: the pipeline's own preprocessing, the frozen encoders, resumable order."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from diffusers.image_processor import VaeImageProcessor
from PIL import Image
from tqdm.auto import tqdm

from ...errors import FormatError
from ..contract import ConditionContract, extra_forms
from ..data import PairsIndex, TrainingPair
from ..identity.preprocessing import ImagePreprocessing
from ..pipeline import conditions_to_tensor
from .components import Components


def check_pairs_hold(index: PairsIndex, contract: ConditionContract) -> None:
    """A ``FormatError`` naming the first pair shard, pair and map when some pair lacks a map beyond
    posedive's own that ``contract`` reads (pairs written for another family): refused before training,
    not at the batch that meets it."""
    needed = extra_forms(contract)
    lacking = list(index.lacking(needed))
    if not lacking:
        return
    shard, key, missing = lacking[0]
    family = _family_drawing(contract, needed)
    labels = ", ".join(m.label for m in contract.maps if m.form is not None and (m.form.source or m.name) in missing)
    raise FormatError(
        f"{shard}: pair {key} has no {', '.join(repr(name) for name in missing)} map, which the generator's "
        f"condition contract reads ({labels}); {len(lacking)} of {len(index)} pairs lack maps it reads",
        hint=f"write the pairs for this generator: `posedive pairs VIDEO --out DIR --family {family}`, or "
             f"draw existing pairs again: `posedive pairs PAIRS_DIR --out NEW_DIR --family {family}`",
    )


def _family_drawing(contract: ConditionContract, forms: tuple[str, ...]) -> str:
    """The family whose pairs hold ``forms``: the generator's own, else the first that does (a posedive
    generator may be trained on another family's maps)."""
    from ...schema import GENERATOR_FAMILIES
    from ..families.registry import family_contract

    candidates = [contract.family, *(name for name in GENERATOR_FAMILIES if name != contract.family)]
    return next((name for name in candidates if set(forms) <= set(extra_forms(family_contract(name)))),
                contract.family)


class PairsTorchDataset:
    """Turns :class:`~posedive.generation.data.TrainingPair` into the tensors a step needs, with the
    same preprocessing the pipeline applies at inference (VAE image processor, the identity encoder's
    ``preprocessor``, :func:`~posedive.generation.pipeline.conditions_to_tensor` in the pose guider's
    contract). The preprocessor is a small Pydantic model, so data-loader workers get no weights."""

    def __init__(
        self,
        index: PairsIndex,
        identity_preprocessor: ImagePreprocessing,
        vae_scale_factor: int,
        width: int,
        height: int,
        contract: ConditionContract,
    ) -> None:
        check_pairs_hold(index, contract)
        self.index = index
        self.identity_preprocessor = identity_preprocessor
        self.image_processor = VaeImageProcessor(vae_scale_factor=vae_scale_factor)
        self.width = width
        self.height = height
        self.contract = contract

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.encode(self.index[i])

    def encode(self, pair: TrainingPair) -> dict[str, torch.Tensor]:
        reference = Image.fromarray(pair.reference)
        target = Image.fromarray(pair.target)
        size = {"height": self.height, "width": self.width}
        maps = pair.maps()  # the contract picks its maps from these, and names any the pair lacks
        return {
            "target": self.image_processor.preprocess(target, **size)[0],
            "reference": self.image_processor.preprocess(reference, **size)[0],
            "identity_pixels": self.identity_preprocessor([reference])[0],
            "conditions": conditions_to_tensor([maps], self.height, self.width, self.contract)[0],
        }


class EncodedDataset:
    """Pairs already encoded by the frozen VAE and identity encoder (``data.cache_latents``)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {name: tensor[i] for name, tensor in self.tensors.items()}


def encode_batch(components: Components, batch: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A batch of :class:`PairsTorchDataset` items -> the model's inputs: latents, the identity tokens and
    the tokens reference dropout replaces them with (the encoder's unconditional tokens)."""
    with torch.no_grad():
        vae, scale = components.vae, components.vae.config.scaling_factor
        target = vae.encode(batch["target"].to(vae.dtype)).latent_dist.mean * scale
        reference = vae.encode(batch["reference"].to(vae.dtype)).latent_dist.mean * scale
        encoder = components.identity_encoder
        embeds = encoder.encode(batch["identity_pixels"])
        unconditional = encoder.unconditional_tokens(embeds.shape[0])
    return {
        "latents": target.to(dtype),
        "reference_latents": reference.to(dtype),
        "image_embeds": embeds.to(dtype),
        "unconditional_embeds": unconditional.to(dtype),
        "conditions": batch["conditions"].to(dtype),
    }


def encode_dataset(components: Components, dataset: PairsTorchDataset, batch_size: int, dtype: torch.dtype, device: Any) -> EncodedDataset:
    """Run the frozen encoders over every pair once."""
    parts: dict[str, list[torch.Tensor]] = {}
    for start in tqdm(range(0, len(dataset), batch_size), desc="encoding pairs", unit="batch"):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        batch = {k: v.to(device) for k, v in torch.utils.data.default_collate(samples).items()}
        for name, tensor in encode_batch(components, batch, dtype).items():
            parts.setdefault(name, []).append(tensor.cpu())
    return EncodedDataset({name: torch.cat(chunks) for name, chunks in parts.items()})


class EpochSampler:
    """A permutation of the dataset per epoch, drawn from ``seed + epoch`` alone, so a resumed run
    sees the batches an uninterrupted run would have seen."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


def endless_batches(loader: Any, sampler: EpochSampler, start: int, skip: Callable[[Any, int], Any] | None = None) -> Iterator[Any]:
    """Endless batches starting at micro-batch ``start`` (``skip(loader, n)`` skips without loading)."""
    per_epoch = max(1, len(loader))
    epoch, offset = divmod(start, per_epoch)
    while True:
        current = skip(loader, offset) if offset and skip is not None else loader
        # accelerate's loaders reset the sampler's epoch from their own counter when iterated
        if hasattr(current, "set_epoch"):
            current.set_epoch(epoch)
        sampler.set_epoch(epoch)
        for index, batch in enumerate(current):
            if current is loader and index < offset:
                continue
            yield batch
        epoch, offset = epoch + 1, 0
