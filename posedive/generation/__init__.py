"""Generation: the two-branch diffusion generator (paper 3.4, supplementary 2), its training and data.

Heavy modules (torch, diffusers, transformers) load on first use, so importing ``posedive.generation``
is cheap: ``load_generator`` for the builder, ``PoseDivePipeline`` for direct use, ``TwoBranchModel``
for its model step, ``train_generator`` for training, ``check_generator`` and ``ConditionContract``
for what a checkpoint was trained on, and the pairs format in :mod:`posedive.generation.data`.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "load_generator": ".generator",
    "DiffusionGenerator": ".generator",
    "GeneratorMetadata": ".checkpoint",
    "weights_sha256": ".checkpoint",
    "read_contract": ".checkpoint",
    "check_generator": ".checkpoint",
    "ConditionContract": ".contract",
    "ConditionMap": ".contract",
    "POSEDIVE_CONTRACT": ".contract",
    "PoseDivePipeline": ".pipeline",
    "PoseDivePipelineOutput": ".pipeline",
    "conditions_to_tensor": ".pipeline",
    "PoseGuider": ".models.pose_guider",
    "TwoBranchModel": ".models.two_branch",
    "TrainingConfig": ".training_config",
    "load_training_config": ".training_config",
    "train_generator": ".training",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
