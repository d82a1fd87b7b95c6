"""The stages a build runs, assembled from the recipe.

``CpuStages`` are the condition renderer and the pose estimator; ``BuildStages`` add the generator.
Every field is required: a shard is never built with a stage missing. Each stage is created once per
worker (models load once, renderers are reused). Tests and other engines pass their own stages; the
command line always loads the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

from ..errors import StageUnavailable
from ..pose import PoseEstimator
from ..provenance import BodyShapeRecord
from ..recipe import Recipe
from ..schema import ConditionRenderer, Generator

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from ..generation.contract import ConditionContract


def close_stage(stage: object) -> None:
    """Release what a stage holds (GL context, estimator graph, model), if it has anything to release."""
    close = getattr(stage, "close", None)
    if callable(close):
        close()


class ShapeStage(Protocol):
    """Each identity's body shape from its reference images (``posedive.conditions.shapes``); None:
    the renderer's own body."""

    def shape(self, pid: int, images: Sequence[Path]) -> BodyShapeRecord | None: ...


class ReidStage(Protocol):
    """Re-ID features of person images for the quality report (``posedive.generation.identity.reid_features``),
    computed where the shard is built, on its CPU."""

    name: str

    def features(self, images: Sequence["Image.Image"]) -> "np.ndarray": ...


@dataclass
class CpuStages:
    """The stages that run on CPUs: rendering the target conditions, estimating poses for the filter."""

    conditions: ConditionRenderer
    estimator: PoseEstimator
    # Each identity's body shape; None: the renderer's one body, as ``body.shape: fixed`` asks.
    shapes: ShapeStage | None = field(default=None, kw_only=True)
    # The recipe's quality.reid_encoder; None: no Re-ID similarity is recorded.
    reid: ReidStage | None = field(default=None, kw_only=True)

    def close(self) -> None:
        for stage in (self.conditions, self.estimator, self.shapes, self.reid):
            close_stage(stage)


@dataclass
class BuildStages(CpuStages):
    """All three stages of a build."""

    generator: Generator

    def close(self) -> None:
        super().close()
        close_stage(self.generator)


def load_shapes(recipe: Recipe) -> ShapeStage | None:
    if recipe.body.shape == "fixed":
        return None
    from ..conditions.shapes import load_identity_shapes

    return load_identity_shapes(recipe)


def load_reid(recipe: Recipe) -> ReidStage | None:
    if recipe.quality.reid_encoder is None:
        return None
    try:
        from ..generation.identity.reid_features import load_reid_encoder
    except ImportError as error:
        raise StageUnavailable(f"quality.reid_encoder needs the generation stage (torch), which cannot be loaded: "
                               f"{error}") from error
    return load_reid_encoder(recipe.quality.reid_encoder, recipe.base_dir)


def load_conditions(recipe: Recipe) -> ConditionRenderer:
    """The recipe's renderer, rendering the maps its generator's condition contract reads as well."""
    try:
        from ..conditions import load_condition_renderer
    except ImportError as error:
        raise StageUnavailable(f"the conditions stage (posedive.conditions) cannot be loaded: {error}") from error
    return load_condition_renderer(recipe, forms=contract_forms(recipe))


def recipe_contract(recipe: Recipe) -> "ConditionContract | None":
    """The condition contract of the recipe's generator: its own (config files only), or its family's when
    it cannot be read before the weights load; ``None`` without the generation stage."""
    try:
        from ..generation.checkpoint import check_generator
        from ..generation.contract import POSEDIVE_CONTRACT
        from ..generation.families.registry import FAMILIES
    except ImportError:
        return None  # no generation stage: a build stops at load_generator, saying why
    contract = check_generator(recipe.generator, recipe.base_dir).contract
    if contract is None:
        family = FAMILIES.get(recipe.generator.family)
        contract = family.contract if family is not None else POSEDIVE_CONTRACT
    return contract


def contract_forms(recipe: Recipe) -> tuple[str, ...]:
    """The maps beyond posedive's own that the recipe's generator reads (see :func:`recipe_contract`)."""
    contract = recipe_contract(recipe)
    if contract is None:
        return ()
    from ..generation.contract import forms_to_render

    return forms_to_render(contract)


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


def load_cpu_stages(recipe: Recipe, conditions: ConditionRenderer | None = None) -> CpuStages:
    """The recipe's renderer (``conditions`` when one is already loaded) and estimator."""
    return CpuStages(conditions=conditions if conditions is not None else load_conditions(recipe),
                     estimator=load_estimator(recipe), shapes=load_shapes(recipe), reid=load_reid(recipe))


def load_stages(recipe: Recipe, conditions: ConditionRenderer | None = None) -> BuildStages:
    """Every stage the recipe names (reusing ``conditions`` when one is already loaded)."""
    cpu = load_cpu_stages(recipe, conditions)
    return BuildStages(conditions=cpu.conditions, estimator=cpu.estimator, generator=load_generator(recipe),
                       shapes=cpu.shapes, reid=cpu.reid)
