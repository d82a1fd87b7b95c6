"""The ``posedive`` command line: a thin root that only registers one module per verb.

Each module in ``posedive.commands`` exposes ``register(app: typer.Typer)``. Command modules import
their heavy dependencies (torch, pyrender, mediapipe) inside the command functions, so
``posedive --help`` and ``posedive validate`` start fast.
"""

from __future__ import annotations

import importlib

import typer

from . import __version__

COMMAND_MODULES: tuple[str, ...] = (
    "validate",
    "build",
    "info",
    "posebank",
    "gallery",
    "report",
    "stats",
    "fit",
    "pairs",
    "train_generator",
    "convert_generator",
    "push",
    "splits",
    "reid",
    "export",
)

app = typer.Typer(
    name="posedive",
    help="Pose- and viewpoint-diversified generative augmentation for person Re-ID, as versioned datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"posedive {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log debug messages, and other libraries' own logs and progress bars"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    from .commands._noise import configure_logging
    from .parallel import use_reproducible_cpu_numerics

    use_reproducible_cpu_numerics()  # before any command loads torch: releases must not depend on threads
    configure_logging(verbose)


for _name in COMMAND_MODULES:
    importlib.import_module(f".commands.{_name}", __package__).register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
