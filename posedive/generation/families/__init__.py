"""Released generator families posedive converts and runs: Pose2ID IPG, Moore-AnimateAnyone, Champ.

``FAMILIES`` holds one :class:`GeneratorFamily` per released relative (one module each);
:func:`generator_family` looks one up by the name a recipe's ``generator.family`` uses, and
:func:`convert_generator` turns the released files into a posedive generator folder. posedive's own
family (``posedive``) is trained with ``posedive train-generator`` and has nothing to convert.
"""

from .base import GeneratorFamily
from .registry import FAMILIES, family_contract, generator_family


def convert_generator(*args, **kwargs):  # noqa: ANN002, ANN003 - forwards to .convert (torch loads there)
    from .convert import convert_generator as convert

    return convert(*args, **kwargs)


__all__ = ["FAMILIES", "GeneratorFamily", "convert_generator", "family_contract", "generator_family"]
