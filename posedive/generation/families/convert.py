"""Released files of a generator family -> a posedive generator folder, strictly and atomically.

Every key of every released file is mapped to exactly one key of posedive's modules (shapes checked)
or matched by the family's written list of unused keys with its reason; anything else is a
``CheckpointError`` naming the key (:func:`~posedive.generation.state_dicts.convert_state_dict`). The
base components the release does not ship (the U-Net config, the VAE, the CLIP tower) come from local
folders or pinned Hub revisions through their own ``from_pretrained``. The folder is written under a
temporary name beside ``out`` and renamed when complete; an existing ``out`` is never replaced unless
``overwrite`` says so, and then it is moved aside to ``OUT.replaced-<UTC time>``, never deleted.
``posedive_generator.json`` records the family, every source file's sha256, the base components and
the fate of every key (:class:`ConversionRecord`).
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import torch
from pydantic import BaseModel, ConfigDict

from ...errors import InputError
from ...files import sha256_file
from ..checkpoint import GeneratorMetadata
from ..state_dicts import ConversionReport, UnusedKeys, convert_state_dict, module_shapes, read_state_dict
from ..training_config import IMAGE_ENCODER_REPO, IMAGE_ENCODER_REVISION, SD15_UNET, SD_VAE_FT_MSE_VAE, WeightsSource
from .base import REFERENCE_HEAD_KEYS, REFERENCE_HEAD_REASON, GeneratorFamily
from .registry import generator_family

logger = logging.getLogger(__name__)

CLIP_IMAGE_ENCODER = WeightsSource(path=IMAGE_ENCODER_REPO, revision=IMAGE_ENCODER_REVISION, subfolder="image_encoder")


class ConversionRecord(BaseModel):
    """What a converted generator was made from (saved in ``posedive_generator.json`` as ``conversion``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str
    release: str
    source_sha256: dict[str, str]
    base: dict[str, WeightsSource]
    reports: tuple[ConversionReport, ...]
    filled: dict[str, str]
    unused_files: dict[str, str]


def _resolve(source: WeightsSource) -> tuple[str, str | None]:
    """A local folder as a path, anything else as a Hub id at its revision."""
    path = Path(source.path).expanduser()
    return (str(path), None) if path.exists() else (source.path, source.revision)


def _release_folder(family: GeneratorFamily, source: Path) -> Path:
    candidates = [source, *sorted(p.parent for p in source.rglob(family.release_files[0]))] if source.is_dir() else []
    for folder in candidates:
        if all((folder / name).is_file() for name in family.release_files):
            return folder
    raise InputError(
        f"{source}: no folder here holds the {family.title} release files {', '.join(family.release_files)}",
        hint=f"download them with `hf download {family.hub_repo} --local-dir DIR` and pass DIR",
    )


def _identity_rename(key: str) -> str:
    return key


def convert_unets(
    denoising: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor], unet_config: Mapping[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], tuple[ConversionReport, ConversionReport]]:
    """The released ``denoising_unet.pth`` and ``reference_unet.pth`` state dicts -> the state dicts of two
    diffusers ``UNet2DConditionModel(**unet_config)`` (the keys are diffusers' own, so the map is the
    identity); the reference U-Net's missing output head is filled with zeros (``REFERENCE_HEAD_REASON``)."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        expected = module_shapes(UNet2DConditionModel.from_config(dict(unet_config)))
    denoising_state, den_report = convert_state_dict(denoising, _identity_rename, expected, (), "denoising_unet.pth")
    head = {key: expected[key] for key in REFERENCE_HEAD_KEYS}
    reference_state, ref_report = convert_state_dict(
        reference, _identity_rename, {key: shape for key, shape in expected.items() if key not in head},
        (), "reference_unet.pth",
    )
    dtype = next(iter(denoising_state.values())).dtype
    reference_state |= {key: torch.zeros(shape, dtype=dtype, device=next(iter(reference_state.values())).device)
                        for key, shape in head.items()}
    return denoising_state, reference_state, (den_report, ref_report)


def _guider_widths(state_dict: Mapping[str, torch.Tensor]) -> tuple[tuple[int, ...], int, int]:
    """(block_out_channels, input channels, output channels) of a released conv stack, read from its shapes."""
    widths = [state_dict["conv_in.weight"].shape[0]]
    index = 1
    while f"blocks.{index}.weight" in state_dict:
        widths.append(state_dict[f"blocks.{index}.weight"].shape[0])
        index += 2
    return tuple(widths), state_dict["conv_in.weight"].shape[1], state_dict["conv_out.weight"].shape[0]


def convert_guiders(family: GeneratorFamily, files: Mapping[str, Mapping[str, torch.Tensor]]):
    """The family's released guider state dicts (by contract map, as ``family.guider_files`` names them) ->
    the config and state dict of one posedive ``PoseGuider``, and one report per file. Champ's transformer
    block ``attentions.5`` becomes the stack's ``attention``; its never-run blocks are ``family.guider_unused``."""
    from ..models.pose_guider import PoseGuider

    missing = sorted(set(family.guider_files) - set(files))
    if missing:
        raise InputError(f"no state dict for the {family.title} guider file(s) "
                         f"{', '.join(family.guider_files[name] for name in missing)}")
    widths, _, embedding = _guider_widths(next(iter(files.values())))
    config = dict(
        conditioning_channels=family.contract.channels,
        block_out_channels=widths,
        conditioning_embedding_channels=embedding,
        conditions=family.contract.to_config(),
        attention_heads=family.guider_attention_heads,
    )
    with torch.device("meta"):
        expected = module_shapes(PoseGuider(**config))
    state_dict: dict[str, torch.Tensor] = {}
    reports = []
    for name, filename in family.guider_files.items():
        prefix = f"guiders.{name}." if name else ""

        def rename(key: str, prefix: str = prefix) -> str:
            return prefix + ("attention." + key.removeprefix("attentions.5.") if key.startswith("attentions.5.") else key)

        wanted = {key: shape for key, shape in expected.items() if key.startswith(prefix)} if prefix else expected
        converted, report = convert_state_dict(files[name], rename, wanted, family.guider_unused, filename)
        state_dict |= converted
        reports.append(report)
    return config, state_dict, tuple(reports)


def _identity_encoder(family: GeneratorFamily, release: Path, image_encoder: WeightsSource,
                      identity_architecture: Mapping[str, Any] | None):
    from ..identity import ClipIdentityEncoder, TransReIDIdentityEncoder

    if family.identity == "transreid-ifr":
        encoder = TransReIDIdentityEncoder.from_pose2id(release / "transformer_20.pth", release / "IFR.pth",
                                                        identity_architecture)
        return encoder, ()
    from transformers import CLIPVisionModelWithProjection

    path, revision = _resolve(image_encoder)
    tower = CLIPVisionModelWithProjection.from_pretrained(path, subfolder=image_encoder.subfolder, revision=revision)
    return ClipIdentityEncoder.from_clip(tower, preprocessing="squash"), ()


def convert_generator(
    family: str,
    source: Path | str,
    out: Path | str,
    *,
    unet_config: WeightsSource = SD15_UNET,
    vae: WeightsSource = SD_VAE_FT_MSE_VAE,
    image_encoder: WeightsSource = CLIP_IMAGE_ENCODER,
    identity_architecture: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> ConversionRecord:
    """Convert the released files of ``family`` found in ``source`` into the generator folder ``out``.

    ``unet_config``: where ``config.json`` of the SD-1.5 U-Net both U-Nets were trained from lies (its
    weights are not read); ``vae``: the VAE the family samples with (sd-vae-ft-mse); ``image_encoder``: the
    CLIP tower of the CLIP families; ``identity_architecture``: TransReID arguments other than the released
    ViT-B/16 (heads cannot be read from shapes).
    """
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    from ..models.pose_guider import PoseGuider
    from ..pipeline import PoseDivePipeline
    from ..state_dicts import Conversion

    chosen = generator_family(family)
    out = Path(out)
    if out.exists() and not overwrite:
        raise InputError(f"--out {out} already exists", hint="choose a new folder, or pass --overwrite to replace it")
    release = _release_folder(chosen, Path(source))
    unet_path, unet_revision = _resolve(unet_config)
    config = {key: value for key, value in UNet2DConditionModel.load_config(
        unet_path, subfolder=unet_config.subfolder, revision=unet_revision).items() if not key.startswith("_")}
    denoising, reference, unet_reports = convert_unets(
        read_state_dict(release / "denoising_unet.pth"), read_state_dict(release / "reference_unet.pth"), config)
    guider_config, guider_state, guider_reports = convert_guiders(
        chosen, {name: read_state_dict(release / filename) for name, filename in chosen.guider_files.items()})
    identity, _ = _identity_encoder(chosen, release, image_encoder, identity_architecture)
    vae_path, vae_revision = _resolve(vae)
    pipeline = PoseDivePipeline(
        vae=AutoencoderKL.from_pretrained(vae_path, subfolder=vae.subfolder, revision=vae_revision),
        image_encoder=None,
        feature_extractor=None,
        reference_unet=Conversion(config, reference, ()).build(UNet2DConditionModel),
        denoising_unet=Conversion(config, denoising, ()).build(UNet2DConditionModel),
        pose_guider=Conversion(guider_config, guider_state, ()).build(PoseGuider),
        scheduler=DDIMScheduler(**chosen.scheduler),
        identity_encoder=identity,
    )
    files = [*chosen.release_files, *(name for name in chosen.optional_files if (release / name).is_file())]
    record = ConversionRecord(
        family=chosen.name,
        release=chosen.hub_repo,
        source_sha256={name: sha256_file(release / name) for name in files},
        base={"unet_config": unet_config, "vae": vae} | ({"image_encoder": image_encoder}
                                                          if chosen.identity == "clip-image-embedding" else {}),
        reports=unet_reports + guider_reports,
        filled={key: REFERENCE_HEAD_REASON for key in ("reference_unet." + k for k in REFERENCE_HEAD_KEYS)},
        unused_files={name: reason for name, reason in chosen.optional_files.items() if name in files},
    )
    _write(pipeline, chosen, record, out)
    return record


def replaced_name(out: Path) -> Path:
    """Where an existing ``out`` goes when ``overwrite`` replaces it: ``OUT.replaced-<UTC time>`` beside it."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return out.with_name(f"{out.name}.replaced-{stamp}")


def _write(pipeline, family: GeneratorFamily, record: ConversionRecord, out: Path) -> None:
    temporary = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    if temporary.exists():
        shutil.rmtree(temporary)  # this process's own leftover from an interrupted write
    try:
        pipeline.save_pretrained(temporary, safe_serialization=True)
        GeneratorMetadata(
            description=f"{family.title} ({family.hub_repo}) converted to posedive; code {family.code_licence}, "
            f"weights {family.weights_licence}",
            resolution=family.contract.resolution,
            conversion=record.model_dump(mode="json"),
        ).save(temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)  # only the half-written folder of this call
        raise
    if out.exists():
        # the folder being replaced is the user's: it is moved aside, never deleted
        previous = replaced_name(out)
        out.rename(previous)
        logger.warning("moved the previous %s aside to %s", out, previous)
    temporary.rename(out)
    logger.info("wrote %s generator to %s", family.name, out)


__all__ = ["CLIP_IMAGE_ENCODER", "ConversionRecord", "UnusedKeys", "convert_generator", "convert_guiders", "convert_unets",
           "replaced_name"]
