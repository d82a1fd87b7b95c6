"""The registry of released generator families, by the name a recipe's ``generator.family`` uses."""

from ...errors import InputError
from ...schema import GENERATOR_FAMILIES
from ..contract import POSEDIVE_CONTRACT, ConditionContract
from .animate_anyone import ANIMATE_ANYONE
from .base import GeneratorFamily
from .champ import CHAMP
from .pose2id import POSE2ID

FAMILIES: dict[str, GeneratorFamily] = {family.name: family for family in (POSE2ID, ANIMATE_ANYONE, CHAMP)}


def generator_family(name: str) -> GeneratorFamily:
    """The released family ``name``; an ``InputError`` listing the valid names otherwise."""
    if name not in FAMILIES:
        raise InputError(f"unknown generator family {name!r}",
                         hint=f"convertible families: {', '.join(FAMILIES)} (posedive's own is trained, not converted)")
    return FAMILIES[name]


def family_contract(name: str) -> ConditionContract:
    """The condition contract of the family ``name``, posedive's own included; an ``InputError`` listing
    the valid names otherwise."""
    if name == "posedive":
        return POSEDIVE_CONTRACT
    if name not in FAMILIES:
        raise InputError(f"unknown generator family {name!r}", hint=f"families: {', '.join(GENERATOR_FAMILIES)}")
    return FAMILIES[name].contract
