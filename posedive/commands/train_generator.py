"""``posedive train-generator CONFIG``: train (or resume training) the two-branch generator."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from ._common import console, user_errors

logger = logging.getLogger(__name__)


def train_generator(
    config_path: Path = typer.Argument(..., help="training config YAML (see configs/generator/)"),
    max_steps: int | None = typer.Option(None, "--max-steps", help="override max_steps from the config"),
    pairs: list[Path] | None = typer.Option(None, "--pairs", help="override data.pairs (repeatable): pairs folders or shards"),
    init_from: str | None = typer.Option(
        None, "--init-from",
        help="start from this posedive generator (a local folder or a Hub id), e.g. a released model converted by "
        "`posedive convert-generator`: the config's model section becomes {kind: generator, path: INIT_FROM}",
    ),
    init_revision: str | None = typer.Option(None, "--init-revision", help="Hub revision of --init-from"),
) -> None:
    """Train the generator a config describes; rerunning the same command resumes from its last checkpoint.

    For several GPUs, launch through accelerate: ``accelerate launch -m posedive.cli train-generator CONFIG``.
    """
    from ..errors import InputError
    from ..generation.training import train_generator as run
    from ..generation.training_config import load_training_config

    with user_errors():
        if init_revision is not None and init_from is None:
            raise InputError("--init-revision needs --init-from")
        config = load_training_config(config_path)
        if max_steps is not None:
            config = config.model_copy(update={"max_steps": max_steps}).with_base_dir(config.base_dir)
        if pairs:
            data = config.data.model_copy(update={"pairs": [str(p.resolve()) for p in pairs]})
            config = config.model_copy(update={"data": data}).with_base_dir(config.base_dir)
        if init_from is not None:
            local = Path(init_from).expanduser()
            if config.model.kind != "generator":
                logger.warning("--init-from replaces the config's model section (kind: %s)", config.model.kind)
            config = config.starting_from(str(local.resolve()) if local.exists() else init_from, init_revision)
        result = run(config)
    console.print(
        f"generator saved to {result.generator_dir}: {result.steps} steps in {result.seconds:.0f} s, "
        f"fixed-noise loss {result.eval_loss_before:.4f} -> {result.eval_loss_after:.4f}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("train-generator")(train_generator)
