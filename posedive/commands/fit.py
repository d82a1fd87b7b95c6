"""``posedive fit IMAGES_OR_VIDEO --out DIR``: fit the body model to people in photos or a video.

Writes ``fits.jsonl`` (one line per image: its source and the fit: pose, orientation, camera, errors,
success flag and reason) and ``overlays.png``, a contact sheet of each image beside the fitted body
drawn over it.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from pathlib import Path

import typer

from ..errors import InputError
from ._choices import choice_option
from ._common import console, user_errors

logger = logging.getLogger(__name__)


class BodyChoice(StrEnum):
    """The body models a fit can use (``posedive.body.models.load_body_model``)."""

    anny = "anny"
    smpl = "smpl"


def check_body_options(body: BodyChoice, smpl_model_dir: Path | None) -> None:
    """Refuse ``--body smpl`` without ``--smpl-model-dir`` in the options' own words (the body loader
    speaks of the recipe's fields)."""
    if body is BodyChoice.smpl and smpl_model_dir is None:
        raise InputError("--body smpl needs --smpl-model-dir (SMPL files are never shipped)",
                         hint="give --smpl-model-dir DIR, the folder holding SMPL_NEUTRAL.pkl, or use --body anny")


def fit(
    source: Path = typer.Argument(..., help="an image, a folder of images (one person each) or a fixed-camera video"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    body_model: BodyChoice = choice_option(BodyChoice, "anny", "--body", help="body model: anny or smpl"),
    smpl_model_dir: Path | None = typer.Option(None, "--smpl-model-dir", help="folder with SMPL_NEUTRAL.pkl (for --body smpl)"),
    batch_size: int = typer.Option(128, "--batch-size", min=1, help="images optimised together"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads while fitting (1 is fastest for these small tensors)"),
    device: str = typer.Option("cpu", "--device", help="torch device for the optimisation"),
    sheet_limit: int = typer.Option(60, "--sheet-limit", min=0, help="most images on the overlay contact sheet"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Fit SMPL-24 pose, body orientation and camera to each person; write fits and overlays."""
    import numpy as np
    from rich.progress import Progress

    from ..body.models import load_body_model
    from ..conditions.fitted import FitRenderer, fit_sheet
    from ..fitting import FitConfig, Skeleton, fit_group
    from ..pose.blazepose import BlazePoseEstimator
    from ..video.inputs import iter_inputs

    config = FitConfig(threads=threads)
    with user_errors():
        check_body_options(body_model, smpl_model_dir)
        body = load_body_model(body_model.value, smpl_model_dir=smpl_model_dir)  # type: ignore[arg-type]
        skeleton = Skeleton.from_body(body)
        out.mkdir(parents=True, exist_ok=True)
        sheet_items = []
        counts = {"images": 0, "fitted": 0}
        errors_2d, errors_3d = [], []
        with (
            BlazePoseEstimator() as estimator,
            FitRenderer(body) as renderer,
            (out / "fits.jsonl").open("w") as lines,
            Progress(console=console, disable=quiet) as progress,
        ):
            task = progress.add_task("fitting", total=None)
            for group in iter_inputs(source, progress=not quiet):
                for batch in group.batches(batch_size):
                    images = batch.images
                    fits = fit_group(batch, skeleton, config, estimator=estimator, device=device)
                    for name, result in zip(batch.sources, fits):
                        lines.write(json.dumps({"source": name, "fit": result.model_dump(mode="json")}) + "\n")
                        counts["images"] += 1
                        if result.success:
                            counts["fitted"] += 1
                            errors_2d.append(result.error_2d_px)
                            errors_3d.append(result.error_3d_mm)
                    room = sheet_limit - len(sheet_items)
                    if room > 0:
                        wanted = min(room, 6) if group.sequence else room  # a few frames per track
                        chosen = sorted(set(np.linspace(0, len(images) - 1, min(wanted, len(images))).round().astype(int).tolist()))
                        maps = renderer.render([fits[i] for i in chosen])
                        sheet_items += [(group.name, images[i], m, fits[i]) for i, m in zip(chosen, maps)]
                    progress.advance(task, len(images))
        if sheet_items:
            fit_sheet(sheet_items, out / "overlays.png")
    summary = f"{counts['fitted']}/{counts['images']} images fitted"
    if errors_2d:
        summary += f"; mean reprojection error {sum(errors_2d) / len(errors_2d):.2f} px"
        summary += f", mean 3D landmark error {sum(errors_3d) / len(errors_3d):.0f} mm"
    console.print(f"{summary}; fits in {out / 'fits.jsonl'}, overlays in {out / 'overlays.png'}")


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
