"""Build orchestration: plan -> shards -> release, over the stages in ``posedive.builder.stages``.

``build_release`` plans, claims the shards it builds (``posedive.builder.claims``: one builder per
shard), hands those still to build to an engine (``LocalEngine`` here, or
``posedive.builder.ray_engine.RayEngine`` on a Ray cluster), writes each shard as it arrives and
finishes the release once every shard passes its checks.
"""

from .engine import LocalEngine, ShardEngine
from .runner import BuildReport, build_release, check_release_folder
from .stages import BuildStages, CpuStages, StageUnavailable

__all__ = ["BuildReport", "BuildStages", "CpuStages", "LocalEngine", "ShardEngine", "StageUnavailable", "build_release",
           "check_release_folder"]
