"""``posedive convert-generator --family FAMILY SRC --out DST``: a released generator -> a posedive generator folder.

A thin wrapper of :func:`posedive.generation.families.convert_generator`. The base components the
release does not ship are each one ``SOURCE[@REVISION][:SUBFOLDER]``: a local folder or a Hub id, the
revision a Hub id is pinned to, and the subfolder holding the component.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ._common import console, user_errors

# the component subfolder a local base folder (a diffusers pipeline layout) keeps each part in
LOCAL_SUBFOLDERS: dict[str, str] = {"--base": "unet", "--vae": "vae", "--image-encoder": "image_encoder"}


def parse_weights_source(text: str, flag: str, hub_subfolder: str | None):
    """``SOURCE[@REVISION][:SUBFOLDER]`` -> a ``WeightsSource``. Without ``:SUBFOLDER`` a local folder that
    holds ``<part>/config.json`` (a pipeline layout) is read there, any other local folder at its top, and a
    Hub id in ``hub_subfolder``."""
    from ..errors import InputError
    from ..generation.training_config import WeightsSource

    source, _, subfolder = text.partition(":")
    source, _, revision = source.partition("@")
    if not source or (_ and not revision):
        raise InputError(f"{flag} {text!r} is not SOURCE[@REVISION][:SUBFOLDER]",
                         hint=f"e.g. {flag} stabilityai/sd-vae-ft-mse@31f26fd or {flag} ./base:vae")
    local = Path(source).expanduser()
    if not subfolder:
        if local.is_dir():
            part = LOCAL_SUBFOLDERS[flag]
            subfolder = part if (local / part / "config.json").is_file() else ""
        else:
            subfolder = hub_subfolder or ""
    return WeightsSource(path=str(local.resolve()) if local.exists() else source, revision=revision or None,
                         subfolder=subfolder or None)


def _architecture(text: str | None) -> dict | None:
    from ..errors import InputError

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"--identity-architecture is not JSON: {error}", hint='e.g. \'{"num_heads": 12}\'') from None
    if not isinstance(value, dict):
        raise InputError("--identity-architecture must be a JSON object of TransReID arguments",
                         hint='e.g. \'{"num_heads": 12}\'')
    return value


def convert_generator(
    source: Path = typer.Argument(..., help="folder holding the released files (e.g. what `hf download` wrote)"),
    family: str = typer.Option(..., "--family", help="pose2id, animate-anyone or champ"),
    out: Path = typer.Option(..., "--out", help="the posedive generator folder to write"),
    base: str | None = typer.Option(
        None, "--base", help="SD-1.5 U-Net the release was trained from (its config.json only), "
        "SOURCE@REVISION:SUBFOLDER (revision and subfolder optional); default stable-diffusion-v1-5 at a pinned revision, unet/"),
    vae: str | None = typer.Option(None, "--vae", help="VAE the family samples with, SOURCE@REVISION:SUBFOLDER; "
                                   "default stabilityai/sd-vae-ft-mse at a pinned revision"),
    image_encoder: str | None = typer.Option(
        None, "--image-encoder", help="CLIP image encoder of animate-anyone and champ, SOURCE@REVISION:SUBFOLDER; "
        "default lambdalabs/sd-image-variations-diffusers@v2.0:image_encoder"),
    identity_architecture: str | None = typer.Option(
        None, "--identity-architecture", help="pose2id: TransReID arguments as JSON when the ViT is not the "
        "released ViT-B/16 (heads cannot be read from the weights)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing --out (it is moved aside to "
                                   "OUT.replaced-<time>, never deleted)"),
) -> None:
    """Convert a released generator (Pose2ID IPG, Moore-AnimateAnyone, Champ) into a posedive generator folder
    that a recipe's generator.weights loads; every released key is checked and the folder records their sha256."""
    from ..generation.families import convert as conversion
    from ..generation.families.registry import generator_family

    with user_errors():
        chosen = generator_family(family)
        options = {}
        for flag, text, default in (("--base", base, conversion.SD15_UNET), ("--vae", vae, conversion.SD_VAE_FT_MSE_VAE),
                                    ("--image-encoder", image_encoder, conversion.CLIP_IMAGE_ENCODER)):
            if text is not None:
                options[flag] = parse_weights_source(text, flag, default.subfolder)
        record = conversion.convert_generator(
            chosen.name, source, out,
            unet_config=options.get("--base", conversion.SD15_UNET),
            vae=options.get("--vae", conversion.SD_VAE_FT_MSE_VAE),
            image_encoder=options.get("--image-encoder", conversion.CLIP_IMAGE_ENCODER),
            identity_architecture=_architecture(identity_architecture),
            overwrite=overwrite,
        )
    for report in record.reports:
        console.print(f"{report.source}: {report.consumed} keys converted, {len(report.unused)} known unused",
                      highlight=False)
    width, height = chosen.width, chosen.height
    typer.echo(f"wrote the {chosen.title} generator to {out}")
    typer.echo("recipe:\n  generator:\n"
               f"    family: {chosen.name}\n    weights: {out}\n    width: {width}\n    height: {height}\n"
               f"    steps: {chosen.steps}\n    guidance_scale: {chosen.guidance_scale}")


def register(app: typer.Typer) -> None:
    app.command("convert-generator")(convert_generator)
