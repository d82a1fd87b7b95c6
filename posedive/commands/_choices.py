"""Command-line options with a fixed set of values: an Enum, its values shown in ``--help``.

Typer turns an Enum-typed option into a choice; this helper adds the message posedive's commands
have always given for a wrong value (``--by must be viewpoint or pose, got 'x'``), so every such
option names its flag and its values the same way.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Callable, TypeVar

import typer

ChoiceT = TypeVar("ChoiceT", bound=StrEnum)


def spoken_choices(choices: type[StrEnum]) -> str:
    """``a, b or c``: the values of an Enum as a sentence names them."""
    values = [member.value for member in choices]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def choice_parser(flag: str, choices: type[ChoiceT]) -> Callable[[Any], ChoiceT]:
    """A typer ``parser`` that accepts exactly the values of ``choices`` and names them otherwise."""

    def parse(value: Any) -> ChoiceT:
        if isinstance(value, choices):
            return value
        try:
            return choices(value)
        except ValueError:
            raise typer.BadParameter(f"{flag} must be {spoken_choices(choices)}, got {value!r}") from None

    return parse


def choice_option(choices: type[StrEnum], default: Any, flag: str, *, help: str) -> Any:
    """A ``typer.Option`` for ``flag`` whose values are those of ``choices``, listed as its metavar."""
    return typer.Option(default, flag, parser=choice_parser(flag, choices),
                        metavar="[" + "|".join(member.value for member in choices) + "]", help=help)
