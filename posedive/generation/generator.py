"""The builder-facing generator: a :class:`~posedive.schema.Generator` backed by ``PoseDivePipeline``.

``load_generator(config, base_dir)`` loads a posedive generator checkpoint (a ``save_pretrained``
folder of :class:`~posedive.generation.pipeline.PoseDivePipeline`) from a local path or a Hub id at a
revision, checks its condition contract against the recipe's generator section (before the weights
load), picks the device and dtype, and identifies the weights for provenance: ``info.sha256``
hashes every weight file, ``info.description`` comes from the ``posedive_generator.json`` written
beside the weights by ``posedive train-generator`` (what the model is, how it was trained), and
``info.conditions`` describes the condition contract every sample it makes was generated under.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from ..errors import CheckpointError, InputError, PathNotFound
from ..native_output import libraries_are_quiet
from ..schema import GenerationRequest, GeneratorInfo
from .checkpoint import METADATA_FILE, GeneratorMetadata, check_contract, local_folder, read_contract, weights_sha256
from .contract import ConditionContract

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

    from ..recipe import GeneratorConfig
    from .pipeline import PoseDivePipeline

logger = logging.getLogger(__name__)

__all__ = [
    "METADATA_FILE",
    "DiffusionGenerator",
    "GeneratorMetadata",
    "load_generator",
    "resolve_device",
    "resolve_dtype",
    "torch_dtype",
    "weights_sha256",
]


def resolve_device(spec: str) -> "torch.device":
    """``auto`` -> cuda when available, else cpu; anything else is passed to ``torch.device``."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as error:
        raise InputError(f"generator.device {spec!r} is not a torch device: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"generator.device {spec!r} asks for CUDA but torch sees no GPU")
    return device


DTYPE_NAMES: tuple[str, ...] = ("float32", "float16", "bfloat16")


def torch_dtype(name: str) -> "torch.dtype":
    """``"float32"`` / ``"float16"`` / ``"bfloat16"`` -> the torch dtype (the names configs use)."""
    import torch

    if name not in DTYPE_NAMES:
        raise InputError(f"dtype {name!r} is not one of {', '.join(DTYPE_NAMES)}")
    return getattr(torch, name)


def resolve_dtype(spec: str, device: "torch.device") -> "torch.dtype":
    """``auto`` -> bfloat16 on GPU, float32 on CPU (half precision on CPU is slow and inexact)."""
    if spec == "auto":
        return torch_dtype("bfloat16" if device.type == "cuda" else "float32")
    return torch_dtype(spec)


class DiffusionGenerator:
    """Generates one image per request at the configured size, in batches of ``config.batch_size``.

    With ``config.compile`` a short last batch is padded to ``batch_size`` (repeating its last
    request, whose extra images are dropped): a compiled U-Net recompiles for every new batch size,
    and a build's rounds of retries would otherwise bring many. Samples do not depend on their batch,
    so padding changes no image.
    """

    def __init__(
        self,
        pipeline: "PoseDivePipeline",
        config: "GeneratorConfig",
        info: GeneratorInfo,
        contract: ConditionContract | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.config = config
        self.info = info
        self.contract = contract or pipeline.pose_guider.contract
        """The condition maps, their encoding and the resolution the model was trained on."""
        family_encoder = getattr(pipeline, "identity_encoder", None)
        self.identity_encoder = family_encoder.kind if family_encoder is not None else "clip-image-embedding"
        """The kind of identity encoder :meth:`identity_features` uses: the one the generator reads references with."""

    def identity_features(self, images: Sequence["Image.Image"]) -> "np.ndarray":
        """``(B, D)`` float32 features of ``images`` by the generator's own, already loaded, identity
        encoder, with the preprocessing it reads references with: the family's ``identity_encoder``
        component (its tokens, flattened: e.g. TransReID + IFR's 20 x 768), or for generators saved
        before it the CLIP image embedding."""
        import torch

        from .numerics import thread_independent_numerics

        # The features land in provenance and the manifest: like the images, they must not depend on threads.
        with torch.no_grad(), thread_independent_numerics(self.pipeline.device):
            family_encoder = getattr(self.pipeline, "identity_encoder", None)
            if family_encoder is not None:
                tokens = family_encoder.encode_images([image.convert("RGB") for image in images])
                return tokens.reshape(tokens.shape[0], -1).float().cpu().numpy()
            encoder = self.pipeline.image_encoder
            pixels = self.pipeline.feature_extractor(images=[image.convert("RGB") for image in images],
                                                     return_tensors="pt").pixel_values
            embeds = encoder(pixels.to(device=encoder.device, dtype=encoder.dtype)).image_embeds
            return embeds.float().cpu().numpy()

    def generate(self, requests: Sequence[GenerationRequest]) -> list["Image.Image"]:
        import torch
        from tqdm.auto import tqdm

        from .condition_forms import condition_maps
        from .numerics import thread_independent_numerics
        from .pipeline import conditions_to_tensor

        config = self.config
        images: list[Image.Image] = []
        starts = range(0, len(requests), config.batch_size)
        for start in tqdm(starts, desc="generating", unit="batch", disable=len(starts) < 2, leave=False):
            wanted = requests[start : start + config.batch_size]
            chunk = list(wanted) + [wanted[-1]] * (config.batch_size - len(wanted) if config.compile else 0)
            maps = [condition_maps(r.conditions, self.contract) for r in chunk]
            conditions = conditions_to_tensor(maps, config.height, config.width, self.contract)
            generators = [torch.Generator("cpu").manual_seed(int(r.seed)) for r in chunk]
            with thread_independent_numerics(self.pipeline.device):  # a release must not depend on threads
                output = self.pipeline(
                    reference_images=[r.reference for r in chunk],
                    conditions=conditions,
                    generator=generators,
                    height=config.height,
                    width=config.width,
                    num_inference_steps=config.steps,
                    guidance_scale=config.guidance_scale,
                )
            images.extend(output.images[: len(wanted)])
        return images

    def close(self) -> None:
        """Release the weights (and GPU memory) held by this generator."""
        import torch

        device = self.pipeline.device
        del self.pipeline
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _checkpoint_folder(config: "GeneratorConfig", base_dir: Path) -> Path:
    path = local_folder(config, base_dir)
    if path is not None:
        if not path.is_dir():
            raise PathNotFound(f"generator.weights: folder {path} does not exist")
        return path
    from diffusers import DiffusionPipeline

    logger.info("fetching generator %s at revision %s", config.weights, config.revision or "main")
    return Path(DiffusionPipeline.download(config.weights, revision=config.revision))


@contextmanager
def _loading_bar_hidden() -> Iterator[None]:
    """diffusers draws a "Loading pipeline components" bar that no environment variable turns off: it
    is hidden while a quiet process loads its generator, and diffusers' own setting restored after."""
    from diffusers.utils import logging as diffusers_logging

    if not libraries_are_quiet() or not diffusers_logging.is_progress_bar_enabled():
        yield
        return
    diffusers_logging.disable_progress_bar()
    try:
        yield
    finally:
        diffusers_logging.enable_progress_bar()


def load_generator(config: "GeneratorConfig", base_dir: Path) -> DiffusionGenerator:
    """Load the generator a recipe names (local paths are relative to ``base_dir``).

    Raises ``CheckpointError`` naming both values when the checkpoint's condition contract does not fit
    the recipe (another resolution, maps the conditions stage does not render), before the weights load.
    """
    from .pipeline import PoseDivePipeline

    folder = _checkpoint_folder(config, Path(base_dir))
    contract = read_contract(folder)
    problems = check_contract(contract, config)
    if problems:
        raise CheckpointError("; ".join(problems), hint=f"the generator was trained on {contract.describe()}")
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    with _loading_bar_hidden():
        pipeline = PoseDivePipeline.from_pretrained(folder, dtype=dtype)
    pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    pipeline.fuse_qkv_projections()
    if config.compile:
        pipeline.compile_denoiser()
    metadata = GeneratorMetadata.load(folder)
    description = (
        metadata.description
        if metadata is not None
        else f"posedive generator from {config.weights} (no {METADATA_FILE} beside the weights: training unknown)"
    )
    info = GeneratorInfo(id=config.weights, revision=config.revision, sha256=weights_sha256(folder),
                         description=description, conditions=contract.describe(), family=contract.family,
                         condition_maps=tuple(m.label for m in contract.maps))
    logger.info("generator %s (%s) on %s in %s; conditions %s", info.id, info.sha256[:12], device, dtype, contract.describe())
    return DiffusionGenerator(pipeline, config, info, contract)
