"""Which conditions a recipe asks for: its build plan's attempts, or a sampled gallery.

The build plan (``posedive.plan``) pairs each work unit's attempts with (pose, elevation, azimuth)
draws; rendering exactly those requests ahead of a build fills the cache the build reads. Without a
readable source (or when a size is given) a gallery is sampled from the recipe's ranges instead.
"""

from __future__ import annotations

import logging

from ..errors import InputError, PlanError, PosediveError
from ..schema import ConditionRequest
from .gallery import gallery_requests

logger = logging.getLogger(__name__)


def plan_requests(recipe, pose_ids: list[str], *, first_attempt_only: bool = False) -> list[ConditionRequest]:
    """Every (pose, viewpoint) the recipe's build plan may render, in plan order, without repeats."""
    from ..plan import make_plan
    from ..sources import read_source

    source = read_source(recipe.source, recipe.base_dir)
    plan = make_plan(recipe, source, pose_ids)
    seen: dict[tuple[str, float, float], ConditionRequest] = {}
    for unit in plan.units:
        for attempt in unit.attempts[:1] if first_attempt_only else unit.attempts:
            key = (attempt.pose_id, attempt.elevation_deg, attempt.azimuth_deg)
            seen.setdefault(key, ConditionRequest(pose_id=key[0], elevation_deg=key[1], azimuth_deg=key[2]))
    return list(seen.values())


def recipe_requests(recipe, pose_ids: list[str], count: int | None = None, *, first_attempt_only: bool = False) -> list[ConditionRequest]:
    """The plan's requests, or ``count`` sampled ones when ``count`` is given."""
    if count is not None:
        if count < 1:
            raise InputError(f"--count must be at least 1, got {count}", hint="give --count 1 or more")
        return gallery_requests(recipe, count, pose_ids)
    try:
        return plan_requests(recipe, pose_ids, first_attempt_only=first_attempt_only)
    except PosediveError as error:
        # The plan reads the source; a gallery of sampled requests does not, so say how to do without it.
        raise PlanError(f"{error.message} (the build plan needs the source)",
                        hint="--count N samples a gallery without it" + (f"; {error.hint}" if error.hint else "")) from None
