"""``posedive reid train|eval``: the BoT baseline on a source dataset, alone and with a posedive release."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import ConfigError, InputError, PathNotFound
from ._common import console, release_location, user_errors

logger = logging.getLogger(__name__)

BASELINE = "baseline"
WITH_RELEASE = "+posedive"
RUN_FOLDERS = {BASELINE: "baseline", WITH_RELEASE: "posedive"}
COMPARISON_FILE = "comparison.json"

reid_app = typer.Typer(help="Train and evaluate the BoT Re-ID baseline (Luo et al. 2019) with and without a release.",
                       no_args_is_help=True)


def comparison_table(results: dict[str, dict[str, Any]], title: str):
    """The paper's comparison: mAP and Rank-1 (plus R5, R10, mINP) per run, and the gain of the release."""
    from rich.table import Table

    columns = ("mAP", "R1", "R5", "R10", "mINP")
    table = Table(title=title)
    table.add_column("method")
    for column in columns:
        table.add_column(column, justify="right")
    for label, metrics in results.items():
        table.add_row(label, *(f"{metrics[c]:.1f}" if c in metrics else "-" for c in columns))
    if BASELINE in results and WITH_RELEASE in results:
        base, aug = results[BASELINE], results[WITH_RELEASE]
        table.add_row("gain", *(f"{aug[c] - base[c]:+.1f}" if c in base and c in aug else "-" for c in columns))
    return table


def _load_config(config_file: Optional[Path], overrides: dict[str, Any]):
    from ..reid.engine import TrainConfig

    raw: dict[str, Any] = {}
    if config_file is not None:
        import yaml

        if not config_file.is_file():
            raise PathNotFound(f"{config_file}: training settings file not found",
                               hint="give --config a YAML file of TrainConfig settings, or leave it out")
        try:
            raw = yaml.safe_load(config_file.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{config_file}: not valid YAML: {error}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{config_file}: expected a mapping of training settings",
                              hint="write one `name: value` line per setting of TrainConfig, e.g. `epochs: 120`")
    raw.update({key: value for key, value in overrides.items() if value is not None})
    return TrainConfig.model_validate(raw)


def train(
    source_root: Path = typer.Option(..., "--source-root", help="Market-1501-layout dataset (train / query / gallery)"),
    out: Path = typer.Option(..., "--out", help="folder for the run(s): one sub-folder per model"),
    release: Optional[str] = typer.Option(None, "--release", help="posedive release merged into the training set: "
                                          "a folder or its URL (s3://..., any fsspec URL)"),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="also train on the source alone"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of training settings (TrainConfig)"),
    epochs: Optional[int] = typer.Option(None, help="override the number of epochs (BoT: 120)"),
    max_steps_per_epoch: Optional[int] = typer.Option(None, help="cut every epoch short"),
    backbone: Optional[str] = typer.Option(None, help="ImageNet weights (hub id or folder); default microsoft/resnet-50"),
    pretrained: bool = typer.Option(True, "--pretrained/--random-init", help="start from the backbone's ImageNet weights"),
    camid: Optional[int] = typer.Option(None, help="camera id of generated images (default: first one the source lacks)"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1, ... (default: cuda when available)"),
    num_workers: Optional[int] = typer.Option(None, help="data-loading processes"),
    seed: Optional[int] = typer.Option(None),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train BoT on the source (baseline) and on the source + release, evaluate both, print the comparison."""
    from ..reid.data import read_market_layout, with_release
    from ..reid.engine import evaluate_model, save_run
    from ..reid.engine import train as train_model

    with user_errors():
        overrides = {"epochs": epochs, "max_steps_per_epoch": max_steps_per_epoch, "backbone": backbone,
                     "device": device, "num_workers": num_workers, "seed": seed}
        settings = _load_config(config, overrides)
        if not pretrained:
            settings = settings.model_copy(update={"backbone": None})
        if release is None and not baseline:
            raise InputError("nothing to train: --no-baseline needs --release",
                             hint="add --release RELEASE, or leave out --no-baseline")
        data = read_market_layout(source_root)
        runs = {}
        if baseline:
            runs[BASELINE] = data
        if release is not None:
            runs[WITH_RELEASE] = with_release(data, release_location(release), camid)
        results: dict[str, dict[str, Any]] = {}
        for label, run_data in runs.items():
            logger.info("run %s: %s", label, run_data.summary())
            trained = train_model(settings, run_data.train, show_progress=progress)
            metrics = evaluate_model(trained.model, run_data, settings, show_progress=progress)
            generated = [item for item in run_data.train if item.generated]
            data_info = {"source_root": str(source_root), "release": str(release) if generated else None,
                         "generated_camid": generated[0].camid if generated else None,
                         "train_images": len(run_data.train), "generated_images": len(generated),
                         "identities": len(trained.labels)}
            save_run(out / RUN_FOLDERS[label], trained, settings, label, metrics, data_info)
            results[label] = metrics.as_dict()
            first, last = trained.losses[0]["loss"], trained.losses[-1]["loss"]
            logger.info("run %s: loss %.3f -> %.3f over %d steps; %s", label, first, last, len(trained.losses),
                        json.dumps(results[label]))
        (out / COMPARISON_FILE).write_text(json.dumps(results, indent=2) + "\n")
    console.print(comparison_table(results, f"BoT on {data.name} (Market-1501 protocol, cosine distance)"))


def evaluate(
    runs: list[Path] = typer.Argument(..., help="run folders written by `posedive reid train`"),
    source_root: Path = typer.Option(..., "--source-root", help="Market-1501-layout dataset whose query/gallery to use"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, ... (default: as trained, else cuda when available)"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Evaluate trained runs on a dataset's query and gallery and print the comparison table."""
    from ..reid.data import read_market_layout
    from ..reid.engine import evaluate_model, load_run

    with user_errors():
        data = read_market_layout(source_root)
        results: dict[str, dict[str, Any]] = {}
        for run in runs:
            model, settings, label = load_run(run)
            if device is not None:
                settings = settings.model_copy(update={"device": device})
            if label in results:
                label = f"{label} ({run})"
            results[label] = evaluate_model(model, data, settings, show_progress=progress).as_dict()
            logger.info("%s: %s", run, json.dumps(results[label]))
    console.print(comparison_table(results, f"BoT on {data.name} (Market-1501 protocol, cosine distance)"))


def register(app: typer.Typer) -> None:
    reid_app.command("train")(train)
    reid_app.command("eval")(evaluate)
    app.add_typer(reid_app, name="reid")
