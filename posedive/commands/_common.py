"""Helpers shared by command modules: turning posedive's typed errors into clean CLI exits."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from ..errors import InputError, PosediveError

console = Console(stderr=True)

# Errors whose message is written for the user. Anything else (a bare ValueError or RuntimeError
# included) is a bug: it keeps its traceback and exits with status 1. A pydantic ValidationError
# escapes only from a model the user filled in (a config read by a command), and its text names the
# field and what was expected.
USER_ERRORS: tuple[type[BaseException], ...] = (PosediveError, ValidationError)

# The exit status of an invalid model of the user's: the same as any other bad value.
VALIDATION_EXIT_CODE = InputError.exit_code


def release_location(text: str) -> "str | Path":
    """A release argument as the command line gives it: an fsspec URL stays text (``Path`` would fold
    its ``//``), anything else is a local folder."""
    from ..storage import is_url

    return text if is_url(text) else Path(text)


RELEASE_HELP = ("release folder (<output.dir>/<name>/<version>) or its URL (s3://bucket/releases/<name>/<version>, "
                "any fsspec URL)")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except PosediveError as error:
        console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False, soft_wrap=True)
        if error.hint:
            console.print(f"hint: {escape(error.hint)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=error.exit_code) from None
    except ValidationError as error:
        console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=VALIDATION_EXIT_CODE) from None
