"""A recipe's pose selection applied to a bank: which poses a build draws from.

A pose is kept when it matches one of ``poses.include`` (its clip name or one of its tags; an empty
list includes every pose), matches none of ``poses.exclude``, and its posed skeleton stays within
the limits (``max_torso_tilt_deg``, ``feet_below_hips``, ``head_above_pelvis``, ``min_hip_height``,
``max_thigh_lift_deg``, ``max_shin_lift_deg``; see ``tags``). The limits are measured on every bank's
poses alike, built-in or imported.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from ...errors import RecipeError
from .format import PoseBank
from .tags import ACTIVITY_TAGS, FEET, GEOMETRIC_TAGS, HEAD, TILT, hip_height_ratio, leg_lift_deg, tag_counts


class TagCount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poses: int
    kept: int


class SelectionSummary(BaseModel):
    """How many of a bank's poses a selection keeps, in all and per tag."""

    model_config = ConfigDict(extra="forbid")

    poses: int
    kept: int
    tags: dict[str, TagCount]


def _matches(bank: PoseBank, tag_lists: list[list[str]], terms: list[str]) -> np.ndarray:
    wanted = set(terms)
    return np.array([clip in wanted or not wanted.isdisjoint(tags) for clip, tags in zip(bank.clip, tag_lists)],
                    dtype=bool)


def _check_terms(bank: PoseBank, tag_lists: list[list[str]], selection) -> None:
    """A term that is no tag posedive knows and no clip or tag of the bank is most likely a typo: name
    it and what there is."""
    known_tags = sorted({tag for tags in tag_lists for tag in tags})
    known = set(known_tags) | set(bank.clip.tolist()) | set(ACTIVITY_TAGS) | set(GEOMETRIC_TAGS)
    for field in ("include", "exclude"):
        unknown = [term for term in getattr(selection, field) if term not in known]
        if unknown:
            raise RecipeError(f"poses.{field}: {unknown} name no clip or tag of this pose bank; its tags: "
                              f"{', '.join(known_tags)}; its clips: {', '.join(sorted(set(bank.clip.tolist())))}",
                              hint="`posedive posebank info --recipe RECIPE` shows the bank's tags and clips")


def selection_mask(bank: PoseBank, selection) -> np.ndarray:
    """Which poses of ``bank`` a recipe's ``poses`` section keeps (a boolean mask in id order)."""
    tag_lists = bank.tag_lists()
    _check_terms(bank, tag_lists, selection)
    keep = _matches(bank, tag_lists, selection.include) if selection.include else np.ones(len(bank), dtype=bool)
    if selection.exclude:
        keep &= ~_matches(bank, tag_lists, selection.exclude)
    if selection.max_torso_tilt_deg is not None:
        keep &= bank.geometry[:, TILT] <= selection.max_torso_tilt_deg
    if selection.feet_below_hips:
        keep &= bank.geometry[:, FEET] > 0
    if selection.head_above_pelvis:
        keep &= bank.geometry[:, HEAD] > 0
    if selection.min_hip_height is not None and keep.any():
        keep[keep] = hip_height_ratio(bank.poses[keep]) >= selection.min_hip_height
    thigh_limit, shin_limit = selection.max_thigh_lift_deg, selection.max_shin_lift_deg
    if (thigh_limit is not None or shin_limit is not None) and keep.any():
        thigh, shin = leg_lift_deg(bank.poses[keep])
        keep[keep] = ((thigh <= thigh_limit) if thigh_limit is not None else True) & (
            (shin <= shin_limit) if shin_limit is not None else True)
    return keep


def select_poses(bank: PoseBank, selection) -> PoseBank:
    """The poses of ``bank`` a recipe's ``poses`` section keeps; keeping none is an error."""
    kept = bank.subset(selection_mask(bank, selection))
    if len(kept) == 0:
        raise RecipeError(f"poses: the selection keeps none of the bank's {len(bank)} poses",
                          hint="loosen poses.include / poses.exclude or the limits; `posedive posebank info --recipe "
                               "RECIPE` shows what each tag keeps")
    return kept


def selection_summary(bank: PoseBank, selection) -> SelectionSummary:
    keep = selection_mask(bank, selection)
    tag_lists = bank.tag_lists()
    total = tag_counts(tag_lists)
    kept = tag_counts(tags for tags, kept in zip(tag_lists, keep) if kept)
    return SelectionSummary(poses=len(bank), kept=int(keep.sum()),
                            tags={tag: TagCount(poses=count, kept=kept.get(tag, 0)) for tag, count in total.items()})
