"""Build orchestration: plan -> shards -> release, over the stages in ``posedive.builder.stages``."""

from .runner import BuildReport, build_release, check_release_folder
from .stages import BuildStages, StageUnavailable

__all__ = ["BuildReport", "BuildStages", "StageUnavailable", "build_release", "check_release_folder"]
