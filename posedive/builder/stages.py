"""Assembling the stages a build needs from the recipe.

Each stage is created once per build (models load once, renderers are reused). Tests and other
engines pass their own ``BuildStages``; the CLI always builds the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import StageUnavailable
from ..pose import PoseEstimator
from ..recipe import Recipe
from ..schema import ConditionRenderer, Generator


@dataclass
class BuildStages:
    conditions: ConditionRenderer
    estimator: PoseEstimator | None = None
    generator: Generator | None = None

    def close(self) -> None:
        for stage in (self.conditions, self.estimator, self.generator):
            close = getattr(stage, "close", None)
            if callable(close):
                close()


def load_conditions(recipe: Recipe) -> ConditionRenderer:
    try:
        from ..conditions import load_condition_renderer
    except ImportError as error:
        raise StageUnavailable(f"the conditions stage (posedive.conditions) cannot be loaded: {error}") from error
    return load_condition_renderer(recipe)


def load_estimator(recipe: Recipe) -> PoseEstimator:
    try:
        from ..pose import load_pose_estimator
    except ImportError as error:
        raise StageUnavailable(f"the filtering stage (posedive.filtering) cannot be loaded: {error}") from error
    return load_pose_estimator(recipe.filter.estimator)


def load_generator(recipe: Recipe) -> Generator:
    try:
        from ..generation import load_generator as load
    except ImportError as error:
        raise StageUnavailable(f"the generation stage (posedive.generation) cannot be loaded: {error}") from error
    return load(recipe.generator, recipe.base_dir)

