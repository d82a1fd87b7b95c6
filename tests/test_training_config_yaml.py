"""Training configs are read as strictly as recipes: a key given twice is an error naming it."""

from __future__ import annotations

import pytest

from posedive.errors import ConfigError, PathNotFound
from posedive.generation.training_config import load_training_config


def test_a_training_config_with_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("data:\n  pairs: a\nsteps: 10\nsteps: 20\n")
    with pytest.raises(ConfigError, match="duplicate key 'steps': first on line 3, again on line 4") as refused:
        load_training_config(path)
    assert str(path) in str(refused.value)


def test_a_missing_training_config_names_the_file(tmp_path):
    with pytest.raises(PathNotFound, match="training config not found"):
        load_training_config(tmp_path / "absent.yaml")
