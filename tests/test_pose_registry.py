"""The registry of pose estimators: names checked without loading a model, recipes validated against it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from posedive.errors import InputError
from posedive.pose import ESTIMATORS, UnknownEstimator, check_estimator_name
from posedive.recipe import RecipeError, parse_recipe

REPO = Path(__file__).resolve().parents[1]
MINIMAL = {"name": "demo", "version": "1.0.0", "source": {"format": "folder", "root": "src"},
           "generator": {"weights": "models/gen"}}


def test_an_unknown_name_is_a_typed_error_listing_the_registered_ones():
    assert check_estimator_name("blazepose") == "blazepose"
    with pytest.raises(UnknownEstimator, match="unknown pose estimator 'openpose'; available: \\['blazepose'\\]") as error:
        check_estimator_name("openpose")
    assert isinstance(error.value, InputError) and isinstance(error.value, ValueError)
    assert all(name in error.value.hint for name in ESTIMATORS)


def test_a_recipe_naming_an_unknown_estimator_fails_validation_with_the_valid_names():
    assert parse_recipe({**MINIMAL, "filter": {"estimator": "blazepose"}}).filter.estimator == "blazepose"
    with pytest.raises(RecipeError) as error:
        parse_recipe({**MINIMAL, "filter": {"estimator": "openpose"}}, source="r.yaml")
    message = str(error.value)
    assert "r.yaml" in message and "  filter.estimator" in message
    assert "unknown pose estimator 'openpose'; available: ['blazepose']" in message


def test_validating_a_recipe_imports_no_estimator_backend():
    """Recipes validate where MediaPipe is absent: checking the estimator's name never imports it."""
    script = textwrap.dedent(f"""
        import sys
        from posedive.recipe import parse_recipe
        import posedive.pose
        recipe = parse_recipe({MINIMAL!r})
        assert recipe.filter.estimator == "blazepose"
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("mediapipe", "cv2", "torch"))
        print(loaded)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


def test_missing_mediapipe_is_a_missing_dependency_naming_the_package(monkeypatch):
    from posedive.errors import MissingDependency
    from posedive.pose.blazepose import MEDIAPIPE_REQUIREMENT, BlazePoseEstimator

    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)
    with pytest.raises(MissingDependency, match="needs MediaPipe") as caught:
        BlazePoseEstimator()
    assert caught.value.hint == f"pip install '{MEDIAPIPE_REQUIREMENT}'" and caught.value.exit_code == 3
