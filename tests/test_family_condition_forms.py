"""Condition maps in other generator families' forms: DWPose's skeleton drawing and Champ's part colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posedive.conditions.render import (
    CHAMP_PART_COLOURS,
    OPENPOSE_COLOURS,
    OPENPOSE_LIMBS,
    SMPL_HEAD_PART,
    SMPL_PELVIS_PART,
    champ_part_colours,
    draw_dwpose_skeleton,
    draw_skeleton,
)
from posedive.generation.condition_forms import condition_maps
from posedive.generation.contract import POSEDIVE_CONTRACT, ConditionContract, ConditionMap
from posedive.generation.pipeline import conditions_to_tensor
from posedive.schema import BodyParams, Camera, ConditionSet

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"
W, H = 96, 192

# A standing figure in OpenPose-18 order (nose, neck, r/l shoulder-elbow-wrist, r/l hip-knee-ankle, eyes, ears).
STANDING = np.array([
    [48, 20], [48, 36], [36, 38], [32, 60], [30, 82], [60, 38], [64, 60], [66, 82], [42, 90], [42, 130],
    [42, 170], [54, 90], [54, 130], [54, 170], [45, 17], [51, 17], [41, 19], [55, 19],
], dtype=np.float32)  # fmt: skip


def _keypoints(visible: bool = True) -> np.ndarray:
    return np.concatenate([STANDING, np.full((18, 1), float(visible), np.float32)], axis=1)


def _dwpose_palette() -> set[tuple[int, int, int]]:
    """What DWPose's drawing can hold: black, a joint's full colour, a limb's colour dimmed to 60 %."""
    return {(0, 0, 0)} | set(OPENPOSE_COLOURS) | {tuple(int(c * 0.6) for c in colour) for colour in OPENPOSE_COLOURS}


def _colours(image: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in c) for c in np.unique(image.reshape(-1, 3), axis=0)}


def test_dwpose_limbs_are_dimmed_joints_full_and_nothing_blended():
    image = draw_dwpose_skeleton(_keypoints(), W, H)
    assert _colours(image) <= _dwpose_palette()
    # the middle of the right lower leg (knee 9 -> ankle 10, limb 8) carries that limb's dimmed colour
    limb = OPENPOSE_LIMBS.index((9, 10))
    assert tuple(image[150, 42]) == tuple(int(c * 0.6) for c in OPENPOSE_COLOURS[limb])
    # a joint is drawn in its own full colour on top of the limbs
    assert tuple(image[170, 42]) == OPENPOSE_COLOURS[10]
    # limbs are 4 px either side of their axis whatever the image size
    row = image[150]
    assert np.count_nonzero(row[30:48].any(axis=1)) in (8, 9)


def test_dwpose_leaves_out_joints_outside_the_image():
    assert not draw_dwpose_skeleton(_keypoints(visible=False), W, H).any()


def test_dwpose_matches_the_upstream_drawing_palette_and_stick_width():
    upstream = np.array(Image.open(UPSTREAM / "animate_anyone" / "pose.png").convert("RGB"))
    assert upstream.shape == (H, W, 3)
    assert _colours(upstream) <= _dwpose_palette()
    # posedive's OpenPose drawing is anti-aliased, so it holds colours the upstream drawing never has
    assert not _colours(draw_skeleton(_keypoints(), W, H)) <= _dwpose_palette()
    ours = draw_dwpose_skeleton(_keypoints(), W, H)
    dimmed = {tuple(int(c * 0.6) for c in colour) for colour in OPENPOSE_COLOURS}
    for image in (upstream, ours):
        present = _colours(image)
        assert present & dimmed and present & set(OPENPOSE_COLOURS)


def _condition_set() -> ConditionSet:
    keypoints = _keypoints()
    skeleton = draw_skeleton(keypoints, W, H)
    camera = Camera(elevation_deg=0, azimuth_deg=0, distance_m=3, fov_deg=30, width=W, height=H,
                    K=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], R=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], t=[0, 0, 0])
    body = BodyParams(model="anny", pose_id="0", pose=[0.0] * 72)
    depth = np.zeros((H, W), np.uint8)
    return ConditionSet("c", depth, np.zeros((H, W, 3), np.uint8), skeleton, keypoints, camera, body)


def _contract(encoding: str) -> ConditionContract:
    return ConditionContract(maps=(ConditionMap(name="skeleton", encoding=encoding, channels=3),))


def test_a_dwpose_contract_reads_the_dwpose_drawing_and_bgr_is_rgb_reversed():
    conditions = _condition_set()
    rgb_contract, bgr_contract = _contract("dwpose-rgb"), _contract("dwpose-bgr")
    rgb = conditions_to_tensor([condition_maps(conditions, rgb_contract)], H, W, rgb_contract)[0]
    bgr = conditions_to_tensor([condition_maps(conditions, bgr_contract)], H, W, bgr_contract)[0]
    expected = draw_dwpose_skeleton(conditions.keypoints_2d, W, H)
    assert np.array_equal((rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), expected)
    assert np.array_equal(bgr.numpy(), rgb.numpy()[::-1])


def test_posedive_contract_maps_are_the_rendered_arrays_unchanged():
    conditions = _condition_set()
    maps = condition_maps(conditions, POSEDIVE_CONTRACT)
    assert set(maps) == set(POSEDIVE_CONTRACT.map_names)
    for name, array in conditions.maps(POSEDIVE_CONTRACT.map_names).items():
        assert maps[name] is array


def test_champ_part_colours_give_every_smpl_part_its_own_colour():
    assert len(CHAMP_PART_COLOURS) == 24 and len(set(CHAMP_PART_COLOURS)) == 24
    labels = np.array([SMPL_HEAD_PART, SMPL_PELVIS_PART, SMPL_HEAD_PART])
    colours = champ_part_colours(labels)
    assert colours.dtype == np.uint8 and colours.shape == (3, 3)
    assert np.array_equal(colours[0], colours[2]) and not np.array_equal(colours[0], colours[1])
    # the palette is a ramp in joint order: brightness (green) rises with the SMPL joint index
    greens = [c[1] for c in CHAMP_PART_COLOURS]
    assert greens == sorted(greens)
    with pytest.raises(ValueError, match="0..23"):
        champ_part_colours(np.array([24]))
