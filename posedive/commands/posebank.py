"""``posedive posebank build|info|formats``: build pose banks (a built-in bank, or an import through
the registry of importers) and show what a bank holds and what a recipe's pose selection keeps."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ._common import user_errors

posebank_app = typer.Typer(help="Build and inspect external pose banks (SMPL-24 poses).", no_args_is_help=True)


class UpAxis(str, Enum):
    y = "y"
    z = "z"
    minus_y = "-y"


@posebank_app.command("build")
def build(
    inputs: list[Path] = typer.Argument(None, help="input files or folders (none for a built-in bank)"),
    format: str = typer.Option(
        "deepmimic", "--format", "-f", help="a built-in bank or an importer (`posedive posebank formats` lists them)"
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="bank file (.npz); built-in banks default to the cache"),
    every: Optional[int] = typer.Option(None, help="keep every N-th frame (defaults: amass 10, bvh 4, fits 1)"),
    up: Optional[UpAxis] = typer.Option(None, help="the inputs' up axis (defaults: amass z, fits -y, bvh y)"),
    licence: Optional[str] = typer.Option(None, help="licence recorded with every imported pose"),
    mirror: bool = typer.Option(True, help="add left-right mirrored poses"),
    dedup: float = typer.Option(0.03, help="drop poses within this mean joint distance (m) of a kept one; 0 keeps all"),
    rebuild: bool = typer.Option(False, help="rebuild the cached built-in bank"),
    from_images: Optional[Path] = typer.Option(
        None, "--from-images", help="fit the people in an image, a folder of images or a video into the bank "
        "(the same as --format images with that input)"
    ),
) -> None:
    """Build a pose bank and print its summary."""
    from ..conditions import posebank as pb
    from ..errors import InputError

    with user_errors():
        if out is not None and out.suffix != ".npz":
            raise InputError(f"--out {out}: a pose bank is a .npz file")
        if from_images is not None:
            if inputs:
                raise InputError("--from-images takes its images itself; give no other inputs")
            format, inputs = "images", [from_images]
        if format in pb.BUILTIN_BANKS:
            if inputs:
                raise InputError(f"the built-in {format} bank is built into posedive; give no inputs")
            if out is None:
                bank = pb.load_builtin_bank(format, rebuild=rebuild)
                out = pb.builtin_bank_path(format)
            else:
                bank = pb.builtin_bank(format).build(dedup_m=dedup, mirror=mirror)
        else:
            if not inputs:
                raise InputError(f"--format {pb.bank_importer(format).name} needs input files or folders")
            if out is None:
                raise InputError(f"--out is required for a bank imported with --format {format} (a .npz path)")
            config = pb.import_config(format, inputs, every=every, up=up.value if up is not None else None,
                                      licence=licence, mirror=mirror, dedup_m=dedup)
            bank = pb.import_bank(config)
        if not (format in pb.BUILTIN_BANKS and out == pb.builtin_bank_path(format)):
            bank.save(out)
    typer.echo(json.dumps({"bank": str(out), **bank.summary()}, indent=2))


@posebank_app.command("info")
def info(
    source: Optional[str] = typer.Argument(None, help="a built-in bank name or a .npz bank (default: deepmimic)"),
    recipe_path: Optional[Path] = typer.Option(
        None, "--recipe", "-r", help="the bank a recipe names, and what its pose selection keeps of it"
    ),
) -> None:
    """Print a bank's size, clips, licences and poses per tag (with --recipe: per tag, how many the
    recipe's selection keeps)."""
    from ..conditions.posebank import load_pose_bank, load_recipe_bank, selection_summary
    from ..errors import InputError
    from ..recipe import load_recipe

    with user_errors():
        if recipe_path is None:
            bank = load_pose_bank(source or "deepmimic")
            typer.echo(json.dumps(bank.summary(), indent=2))
            return
        if source is not None:
            raise InputError("give a bank or --recipe, not both")
        recipe = load_recipe(recipe_path)
        bank = load_recipe_bank(recipe.poses, recipe.resolve)
        summary = selection_summary(bank, recipe.poses)
    selection = recipe.poses.model_dump(mode="json", include={"include", "exclude", "max_torso_tilt_deg",
                                                              "feet_below_hips", "head_above_pelvis",
                                                              "min_hip_height", "max_thigh_lift_deg",
                                                              "max_shin_lift_deg"})
    typer.echo(json.dumps({**bank.summary(), "selection": {**selection, **summary.model_dump()}}, indent=2))


@posebank_app.command("formats")
def formats() -> None:
    """List the built-in banks and the importers, by the names --format and a recipe's poses take."""
    from ..conditions.posebank import BUILTIN_BANKS, IMPORTERS

    for bank in BUILTIN_BANKS.values():
        typer.echo(f"{bank.name:12s} built-in: {bank.description}")
    for importer in IMPORTERS.values():
        typer.echo(f"{importer.name:12s} importer: {importer.description}")


def register(app: typer.Typer) -> None:
    app.add_typer(posebank_app, name="posebank")
