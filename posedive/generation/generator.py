"""The builder-facing generator: a :class:`~posedive.schema.Generator` backed by ``PoseDivePipeline``.

``load_generator(config, base_dir)`` loads a posedive generator checkpoint (a ``save_pretrained``
folder of :class:`~posedive.generation.pipeline.PoseDivePipeline`) from a local path or a Hub id at a
revision, picks the device and dtype, and identifies the weights for provenance: ``info.sha256``
hashes every weight file, ``info.description`` comes from the ``posedive_generator.json`` written
beside the weights by ``posedive train-generator`` (what the model is, how it was trained).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..schema import GenerationRequest, GeneratorInfo

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..recipe import GeneratorConfig
    from .pipeline import PoseDivePipeline

logger = logging.getLogger(__name__)

METADATA_FILE = "posedive_generator.json"
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


class GeneratorMetadata(BaseModel):
    """What ``posedive_generator.json`` holds: shown on the card and stored in provenance."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = 1
    description: str = Field(description="what the model is and how it was trained, in plain words")
    resolution: tuple[int, int] | None = Field(None, description="width, height it was trained at")
    training: dict[str, Any] = Field(default_factory=dict, description="resolved training config and results")

    def save(self, folder: Path | str) -> Path:
        path = Path(folder) / METADATA_FILE
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path | str) -> "GeneratorMetadata | None":
        path = Path(folder) / METADATA_FILE
        if not path.is_file():
            return None
        return cls.model_validate_json(path.read_text())


def weights_sha256(folder: Path | str) -> str:
    """sha256 over (relative path, content) of every weight file below ``folder``, in sorted order."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no weight files ({', '.join(WEIGHT_SUFFIXES)}) under generator folder {folder}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def resolve_device(spec: str) -> "torch.device":
    """``auto`` -> cuda when available, else cpu; anything else is passed to ``torch.device``."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as error:
        raise ValueError(f"generator.device {spec!r} is not a torch device: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"generator.device {spec!r} asks for CUDA but torch sees no GPU")
    return device


DTYPE_NAMES: tuple[str, ...] = ("float32", "float16", "bfloat16")


def torch_dtype(name: str) -> "torch.dtype":
    """``"float32"`` / ``"float16"`` / ``"bfloat16"`` -> the torch dtype (the names configs use)."""
    import torch

    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype {name!r} is not one of {', '.join(DTYPE_NAMES)}")
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

    def __init__(self, pipeline: "PoseDivePipeline", config: "GeneratorConfig", info: GeneratorInfo) -> None:
        self.pipeline = pipeline
        self.config = config
        self.info = info

    def generate(self, requests: Sequence[GenerationRequest]) -> list["Image.Image"]:
        import torch
        from tqdm.auto import tqdm

        from .pipeline import conditions_to_tensor

        config = self.config
        images: list[Image.Image] = []
        starts = range(0, len(requests), config.batch_size)
        for start in tqdm(starts, desc="generating", unit="batch", disable=len(starts) < 2, leave=False):
            wanted = requests[start : start + config.batch_size]
            chunk = list(wanted) + [wanted[-1]] * (config.batch_size - len(wanted) if config.compile else 0)
            conditions = conditions_to_tensor([r.conditions.maps() for r in chunk], config.height, config.width)
            generators = [torch.Generator("cpu").manual_seed(int(r.seed)) for r in chunk]
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


def _local_folder(config: "GeneratorConfig", base_dir: Path) -> Path:
    if config.is_local(base_dir):
        path = Path(config.weights).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_dir():
            raise FileNotFoundError(f"generator.weights: folder {path} does not exist")
        return path
    from diffusers import DiffusionPipeline

    logger.info("fetching generator %s at revision %s", config.weights, config.revision or "main")
    return Path(DiffusionPipeline.download(config.weights, revision=config.revision))


def load_generator(config: "GeneratorConfig", base_dir: Path) -> DiffusionGenerator:
    """Load the generator a recipe names (local paths are relative to ``base_dir``)."""
    from .pipeline import PoseDivePipeline

    folder = _local_folder(config, Path(base_dir))
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
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
    info = GeneratorInfo(id=config.weights, revision=config.revision, sha256=weights_sha256(folder), description=description)
    logger.info("generator %s (%s) on %s in %s", info.id, info.sha256[:12], device, dtype)
    return DiffusionGenerator(pipeline, config, info)
