"""Released generator families posedive converts and runs: Pose2ID IPG, Moore-AnimateAnyone, Champ.

``FAMILIES`` holds one :class:`GeneratorFamily` per released relative (one module each);
:func:`generator_family` looks one up by the name a recipe's ``generator.family`` uses, and
:func:`convert_generator` turns the released files into a posedive generator folder. posedive's own
family (``posedive``) is trained with ``posedive train-generator`` and has nothing to convert.
"""

from ...errors import InputError
from ...schema import GENERATOR_FAMILIES
from .animate_anyone import ANIMATE_ANYONE
from .base import GeneratorFamily
from .champ import CHAMP
from .pose2id import POSE2ID

FAMILIES: dict[str, GeneratorFamily] = {family.name: family for family in (POSE2ID, ANIMATE_ANYONE, CHAMP)}
assert set(FAMILIES) | {"posedive"} == set(GENERATOR_FAMILIES)


def generator_family(name: str) -> GeneratorFamily:
    """The released family ``name``; an ``InputError`` listing the valid names otherwise."""
    if name not in FAMILIES:
        raise InputError(f"unknown generator family {name!r}",
                         hint=f"convertible families: {', '.join(FAMILIES)} (posedive's own is trained, not converted)")
    return FAMILIES[name]


def convert_generator(*args, **kwargs):  # noqa: ANN002, ANN003 - forwards to .convert (torch loads there)
    from .convert import convert_generator as convert

    return convert(*args, **kwargs)


__all__ = ["FAMILIES", "GeneratorFamily", "convert_generator", "generator_family"]
