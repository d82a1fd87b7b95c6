"""Silhouette measurements: rungs across a mesh (exact, from its triangles) and across a soft mask
(sampled) agree, and the width profile does not depend on where or how large the person is."""

from __future__ import annotations

import numpy as np
import pytest

from posedive.fitting.shape_profile import BodyFrame, body_frame, mesh_profile, profile_from_widths
from posedive.fitting.silhouette import Ladder, Lines, covered, mask_runs, mask_widths, mesh_runs, mesh_widths
from posedive.schema import COCO17_KEYPOINTS

WIDTH, HEIGHT = 64, 96


def rectangle(x0: float, y0: float, x1: float, y1: float) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    return vertices, np.array([[0, 1, 2], [0, 2, 3]])


def soft_mask(x0: float, y0: float, x1: float, y1: float, supersample: int = 8) -> np.ndarray:
    """Area coverage of each pixel by the rectangle: an anti-aliased mask (its bilinear 0.5 crossings lie
    within 0.2 px of the true edges)."""
    ys, xs = (np.mgrid[0 : HEIGHT * supersample, 0 : WIDTH * supersample] + 0.5) / supersample
    inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    return inside.reshape(HEIGHT, supersample, WIDTH, supersample).mean(axis=(1, 3)).astype(np.float32)


def test_mesh_and_mask_runs_agree_and_are_clipped_by_the_image():
    vertices, faces = rectangle(10.3, 20.6, 30.1, 90.0)
    mask = soft_mask(10.3, 20.6, 30.1, 90.0)
    lines = Lines(
        origins=np.array([[20.0, 40.0], [20.0, 40.0], [5.0, 5.0], [20.0, 40.0]]),
        directions=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0]]),
        reach=np.array([40.0, 200.0, 40.0, 200.0]),
    )
    exact, sampled = mesh_runs(vertices, faces, lines, WIDTH, HEIGHT), mask_runs(mask, lines)
    assert np.allclose(exact[0], [[-9.7, 10.1]]) and np.allclose(sampled[0], exact[0], atol=0.2)
    assert np.allclose(exact[1], [[-19.4, 50.0]]) and np.allclose(sampled[1], exact[1], atol=0.2)
    assert len(exact[2]) == 0 and len(sampled[2]) == 0  # the line misses the rectangle
    # Cut off by the image's top edge (y = 0) on neither side; cut off by the bottom (96) on both.
    tall_vertices, tall_faces = rectangle(10.0, 20.0, 30.0, 150.0)
    down = Lines(np.array([[20.0, 40.0]]), np.array([[0.0, 1.0]]), np.array([500.0]))
    assert np.allclose(mesh_runs(tall_vertices, tall_faces, down, WIDTH, HEIGHT)[0], [[-20.0, 56.0]])
    assert np.allclose(mask_runs(soft_mask(10.0, 20.0, 30.0, 150.0), down)[0], [[-20.0, 56.0]], atol=0.2)


def test_ladder_widths_equal_the_line_by_line_answer_on_a_body():
    rng = np.random.default_rng(0)
    # A crowd of random small triangles, as a projected body mesh is.
    centres = rng.uniform([15, 10], [45, 85], (3000, 2))
    vertices = (centres[:, None] + rng.normal(0, 0.8, (3000, 3, 2))).reshape(-1, 2)
    faces = np.arange(len(vertices)).reshape(-1, 3)
    ladder = Ladder(np.array([30.0, 48.0]), np.array([0.0, -1.0]), np.arange(-45.0, 45.0, 1.3), 12.0)
    fast = mesh_widths(vertices, faces, ladder, WIDTH, HEIGHT)
    slow = [covered(runs, -12.0, 12.0) for runs in mesh_runs(vertices, faces, ladder.lines(), WIDTH, HEIGHT)]
    assert np.allclose(fast, slow, atol=1e-9) and fast.max() > 10.0


def test_profile_of_a_rectangle_is_its_width_over_its_height():
    ladder = BodyFrame(origin=np.array([30.0, 50.0]), axis=np.array([0.0, -1.0]), torso_px=20.0).ladder()
    mask = soft_mask(22.0, 10.0, 38.0, 90.0)  # 16 px wide, 80 px tall
    profile, stature = profile_from_widths(mask_widths(mask, ladder), ladder, bins=10)
    assert stature == pytest.approx(80.0, abs=ladder.offsets[1] - ladder.offsets[0])
    assert np.allclose(profile, 16.0 / stature, atol=0.01)


def test_mesh_profile_is_the_same_wherever_and_however_large_the_person_is():
    rng = np.random.default_rng(1)
    chest, legs = rng.uniform([20, 10], [44, 30], (400, 2)), rng.uniform([26, 30], [38, 88], (900, 2))
    vertices = np.concatenate([chest, legs])
    faces = np.arange(len(vertices) - len(vertices) % 3).reshape(-1, 3)
    keypoints = np.zeros((len(COCO17_KEYPOINTS), 3))
    named = {"left_shoulder": (40, 28), "right_shoulder": (24, 28), "left_hip": (36, 55), "right_hip": (28, 55),
             "left_knee": (35, 70), "right_knee": (29, 70), "left_ankle": (35, 85), "right_ankle": (29, 85)}  # fmt: skip
    for name, xy in named.items():
        keypoints[COCO17_KEYPOINTS.index(name)] = (*xy, 1.0)
    reference, _ = mesh_profile(vertices, faces, keypoints[:, :2], keypoints, WIDTH, HEIGHT, bins=12)
    # The same body projected at 0.6x and elsewhere: the alignment onto the image keypoints and the
    # stature normalisation give back the same profile.
    moved = vertices * 0.6 + [7.0, -3.0]
    again, _ = mesh_profile(moved, faces, keypoints[:, :2] * 0.6 + [7.0, -3.0], keypoints, WIDTH, HEIGHT, bins=12)
    assert np.nanmax(np.abs(again - reference)) < 1e-9
    assert body_frame(keypoints).torso_px == pytest.approx(27.0)
    keypoints[COCO17_KEYPOINTS.index("left_hip"), 2] = 0.2
    assert body_frame(keypoints, min_confidence=0.5) is None
