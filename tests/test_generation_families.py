"""The registry of released generator families."""

import pytest

from posedive.errors import InputError
from posedive.generation.families import FAMILIES, generator_family
from posedive.schema import GENERATOR_FAMILIES


def test_every_recipe_family_but_posedive_is_a_convertible_family():
    assert set(FAMILIES) | {"posedive"} == set(GENERATOR_FAMILIES)
    assert all(generator_family(name).name == name for name in FAMILIES)


def test_an_unknown_family_names_the_valid_ones():
    with pytest.raises(InputError) as error:
        generator_family("stylegan")
    assert "stylegan" in str(error.value) and all(name in error.value.hint for name in FAMILIES)
