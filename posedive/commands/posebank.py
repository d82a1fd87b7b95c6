"""``posedive posebank build|info``: build pose banks (the built-in DeepMimic one, or from AMASS,
SMPL fits or BVH files) and show what a bank holds."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ._common import user_errors

posebank_app = typer.Typer(help="Build and inspect external pose banks (SMPL-24 poses).", no_args_is_help=True)


class BankFormat(str, Enum):
    deepmimic = "deepmimic"
    amass = "amass"
    fits = "fits"
    bvh = "bvh"


class UpAxis(str, Enum):
    y = "y"
    z = "z"
    minus_y = "-y"


@posebank_app.command("build")
def build(
    inputs: list[Path] = typer.Argument(None, help="input files or folders (not for deepmimic)"),
    format: BankFormat = typer.Option(BankFormat.deepmimic, "--format", "-f", help="what the inputs are"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="bank file (.npz); deepmimic defaults to the cache"),
    every: Optional[int] = typer.Option(None, help="keep every N-th frame (defaults: amass 10, bvh 4, fits 1)"),
    up: Optional[UpAxis] = typer.Option(None, help="the inputs' up axis (defaults: amass z, fits -y, bvh y)"),
    licence: Optional[str] = typer.Option(None, help="licence recorded with every imported pose"),
    mirror: bool = typer.Option(True, help="add left-right mirrored poses"),
    dedup: float = typer.Option(0.03, help="drop poses within this mean joint distance (m) of a kept one; 0 keeps all"),
    rebuild: bool = typer.Option(False, help="rebuild the cached built-in bank"),
    from_images: Optional[Path] = typer.Option(
        None, "--from-images", help="fit the people in an image, a folder of images or a video into the bank"
    ),
) -> None:
    """Build a pose bank and print its summary."""
    from ..conditions import posebank as pb

    with user_errors():
        if from_images is not None:
            if inputs:
                raise ValueError("--from-images takes its images itself; give no other inputs")
            if out is None:
                raise ValueError("--out is required for a bank fitted from images (a .npz path)")
            from ..conditions.posebank_images import bank_from_images

            bank = bank_from_images(from_images, licence=licence or "as the fitted images")
            if mirror:
                bank = bank.with_mirrors()
            bank = bank.deduplicated(dedup)
        elif format is BankFormat.deepmimic:
            if inputs:
                raise ValueError("the deepmimic bank is built from the pybullet wheel; give no inputs")
            if out is None:
                bank = pb.load_builtin_bank("deepmimic", rebuild=rebuild)
                out = pb.builtin_bank_path("deepmimic")
            else:
                bank = pb.build_deepmimic_bank(dedup_m=dedup, mirror=mirror)
        else:
            if not inputs:
                raise ValueError(f"--format {format.value} needs input files or folders")
            if out is None:
                raise ValueError("--out is required for imported banks (a .npz path)")
            missing = [str(p) for p in inputs if not p.exists()]
            if missing:
                raise FileNotFoundError(f"inputs not found: {', '.join(missing)}")
            importer = {BankFormat.amass: pb.import_amass, BankFormat.fits: pb.import_smpl_fits, BankFormat.bvh: pb.import_bvh}[format]
            kwargs: dict = {}
            if every is not None:
                kwargs["every"] = every
            if up is not None:
                kwargs["up"] = up.value
            if licence is not None:
                kwargs["licence"] = licence
            bank = importer(inputs, **kwargs)
            if mirror:
                bank = bank.with_mirrors()
            bank = bank.deduplicated(dedup)
        if out is not None and not (format is BankFormat.deepmimic and out == pb.builtin_bank_path("deepmimic")):
            if out.suffix != ".npz":
                raise ValueError(f"--out {out}: a pose bank is a .npz file")
            bank.save(out)
    typer.echo(json.dumps({"bank": str(out), **bank.summary()}, indent=2))


@posebank_app.command("info")
def info(source: str = typer.Argument("deepmimic", help="a built-in bank name or a .npz bank")) -> None:
    """Print a bank's size, clips and licences."""
    from ..conditions.posebank import load_pose_bank

    with user_errors():
        bank = load_pose_bank(source)
    typer.echo(json.dumps(bank.summary(), indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(posebank_app, name="posebank")
