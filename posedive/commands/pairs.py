"""``posedive pairs VIDEO --out DIR``: people tracked in a fixed-camera video, as training pairs.

One run detects and tracks every pedestrian, keeps the clean tracks and writes to ``--out``:
``tracks.json``, the settings, and the generator's training pairs (``pairs-*.tar``, the format of
``posedive.generation.data``: reference crop, target crop of the same track, the target's fitted
depth / normal / skeleton maps). With ``--market-layout DIR`` it also writes the kept tracks as a
Market-1501 dataset (one track = one identity), so a demo's source and its generator's training set
come from one command.

``--family FAMILY`` adds the maps that family's condition contract reads (Moore-AnimateAnyone's DWPose
skeleton; Champ's depth, semantic map and DWPose skeleton), so ``train-generator --init-from`` a
converted release trains on them. Given a folder of pairs instead of a video, the command draws those
pairs' target maps again for ``--family`` from the fits they store, without tracking or fitting.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from ..errors import InputError, PathExists
from ..schema import GENERATOR_FAMILIES
from ._choices import choice_option
from ._common import console, user_errors
from .fit import BodyChoice, check_body_options

logger = logging.getLogger(__name__)


def pairs(
    video: Path = typer.Argument(..., help="video file from a fixed camera, or a folder of pairs to draw again for --family"),
    out: Path = typer.Option(..., "--out", help="output folder (tracks, settings, contact sheets)"),
    market_layout: Path | None = typer.Option(None, "--market-layout", help="also write the tracks as a Market-1501 dataset here"),
    identities: int = typer.Option(20, "--identities", help="most identities in the Market layout (longest tracks first)"),
    images_per_identity: int = typer.Option(6, "--images-per-identity", help="crops per identity in the Market layout"),
    pairs_too: bool = typer.Option(True, "--pairs/--no-pairs", help="fit the targets and write training pairs"),
    body_model: BodyChoice = choice_option(BodyChoice, "anny", "--body", help="body model for the fits: anny or smpl"),
    smpl_model_dir: Path | None = typer.Option(None, "--smpl-model-dir", help="folder with SMPL_NEUTRAL.pkl (for --body smpl)"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads while fitting (1 is fastest for these small tensors)"),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="only the first N frames"),
    max_pairs_per_track: int = typer.Option(60, "--max-pairs-per-track", min=1, help="most pairs whose targets come from one track"),
    pair_width: int = typer.Option(96, "--pair-width", min=8, help="width of pair crops and maps (height = 2 x width)"),
    family: str = typer.Option("posedive", "--family",
                               help=f"write the maps this generator family reads: {', '.join(GENERATOR_FAMILIES)}"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Detect, track and crop pedestrians in VIDEO; write training pairs (and a Market-1501 layout)."""
    from ..video.extract import VideoConfig, extract_tracks
    from ..video.market import MarketLayoutConfig, write_market_layout
    from ..video.records import write_tracks
    from ..video.sheet import market_sheet

    config = VideoConfig()
    with user_errors():
        if family not in GENERATOR_FAMILIES:
            raise InputError(f"--family must be one of {', '.join(GENERATOR_FAMILIES)}, got {family!r}")
        if pairs_too or video.is_dir():
            check_body_options(body_model, smpl_model_dir)
        if video.is_dir():
            redraw(video, out, family, body_model, smpl_model_dir, market_layout)
            return
        tracks = extract_tracks(video, config, progress=not quiet, max_frames=max_frames)
        out.mkdir(parents=True, exist_ok=True)
        (out / "video_config.json").write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
        write_tracks(tracks, out / "tracks.json")
        console.print(f"{len(tracks.kept)} clean tracks of {len(tracks.tracks)} written to {out / 'tracks.json'}")
        if market_layout is not None:
            layout = MarketLayoutConfig(max_identities=identities, images_per_identity=images_per_identity)
            images = write_market_layout(tracks, market_layout, config.crop, layout)
            sheet = market_sheet(market_layout, out / "market_contact_sheet.png")
            console.print(f"{len(images)} Market-layout images in {market_layout}; contact sheet {sheet}")
        if pairs_too:
            from ..body.models import load_body_model
            from ..fitting import FitConfig
            from ..generation.video_pairs import PairConfig, write_video_pairs

            existing = sorted(out.glob("pairs-*.tar"))
            if existing:
                raise PathExists(f"{out}: already holds {len(existing)} pair shards", hint="choose an empty folder")
            body = load_body_model(body_model.value, smpl_model_dir=smpl_model_dir)  # type: ignore[arg-type]
            pair_config = PairConfig(size=(pair_width, 2 * pair_width), max_pairs_per_track=max_pairs_per_track,
                                     family=family)
            (out / "pair_config.json").write_text(json.dumps(pair_config.model_dump(mode="json"), indent=2) + "\n")
            summary = write_video_pairs(tracks, out, body, config.crop, pair_config, FitConfig(threads=threads), progress=not quiet)
            console.print(
                f"{summary.pairs} pairs from {summary.tracks} tracks in {len(summary.shards)} shard(s) under {out}; "
                f"targets fitted {summary.targets_fitted}, rejected {summary.targets_rejected} {summary.rejections}; "
                f"mean reprojection error {summary.mean_error_2d_px:.2f} px"
            )


def redraw(source: Path, out: Path, family: str, body_model: BodyChoice, smpl_model_dir: Path | None,
           market_layout: Path | None) -> None:
    """The pairs of folder ``source`` written to ``out`` with the maps ``family`` reads, drawn from their fits."""
    from ..body.models import load_body_model
    from ..generation.families.registry import family_contract
    from ..generation.family_pairs import redraw_pairs

    if market_layout is not None:
        raise InputError("--market-layout needs a video: a folder of pairs holds no tracks")
    if out.resolve() == source.resolve() or sorted(out.glob("pairs-*.tar")):
        raise PathExists(f"{out}: already holds pair shards", hint="choose an empty folder for the redrawn pairs")
    contract = family_contract(family)
    body = load_body_model(body_model.value, smpl_model_dir=smpl_model_dir)  # type: ignore[arg-type]
    summary = redraw_pairs(source, out, body, contract)
    console.print(f"{summary.pairs} pairs of {source} drawn for the {family} family ({contract.describe()}) "
                  f"in {len(summary.shards)} shard(s) under {out}")


def register(app: typer.Typer) -> None:
    app.command("pairs")(pairs)
