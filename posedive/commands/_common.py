"""Helpers shared by command modules: turning posedive's typed errors into clean CLI exits."""

from __future__ import annotations

import contextlib
from typing import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import PosediveError

console = Console(stderr=True)

# Errors whose message is written for the user; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, PermissionError)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except PosediveError as error:
        console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False, soft_wrap=True)
        if error.hint:
            console.print(f"hint: {escape(error.hint)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=error.exit_code) from None
    except USER_ERRORS as error:
        console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
