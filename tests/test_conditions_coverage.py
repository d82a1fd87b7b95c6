"""Coverage numbers and pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from posedive.conditions.coverage import coverage_report, normalised_entropy, pose_embedding, viewpoint_histogram
from posedive.conditions.posebank import PoseBank
from posedive.schema import ConditionRequest


def test_entropy_is_one_when_uniform_and_zero_when_concentrated():
    assert normalised_entropy(np.ones((12, 6))) == pytest.approx(1.0)
    one_cell = np.zeros((12, 6))
    one_cell[3, 2] = 50
    assert normalised_entropy(one_cell) == 0.0
    half = np.zeros((12, 6))
    half[:6] = 1
    assert normalised_entropy(half) == pytest.approx(np.log(36) / np.log(72))


def test_histogram_separates_biased_from_uniform_viewpoints():
    rng = np.random.default_rng(0)
    n = 4000
    uniform = viewpoint_histogram(rng.uniform(0, 30, n), rng.uniform(0, 360, n), (0, 30), (0, 360))
    assert uniform.sum() == n and uniform.shape == (12, 6)
    # Re-ID cameras: mostly front/back, little elevation.
    biased = viewpoint_histogram(rng.normal(8, 2, n), (rng.choice([0.0, 180.0], n) + rng.normal(0, 10, n)) % 360, (0, 30), (0, 360))
    assert normalised_entropy(uniform) > 0.98 > 0.7 > normalised_entropy(biased)


def test_pose_embedding_separates_different_poses():
    rng = np.random.default_rng(1)
    a = np.zeros((20, 72)) + rng.normal(0, 0.01, (20, 72))
    b = np.zeros((20, 72)) + rng.normal(0, 0.01, (20, 72))
    b[:, 3 * 16 + 2] = 1.4  # left arm raised
    coords = pose_embedding(np.concatenate([a, b]))
    gap = np.linalg.norm(coords[:20].mean(axis=0) - coords[20:].mean(axis=0))
    spread = max(coords[:20].std(axis=0).max(), coords[20:].std(axis=0).max())
    assert gap > 10 * spread


def test_coverage_report_writes_both_pictures(tmp_path):
    rng = np.random.default_rng(2)
    bank = PoseBank.from_arrays(rng.normal(0, 0.3, (10, 72)), [f"p{i}" for i in range(10)], ["s"] * 10,
                                [f"clip{i % 3}" for i in range(10)], range(10), ["x"] * 10)  # fmt: skip
    requests = [ConditionRequest(f"p{i % 10}", float(rng.uniform(0, 30)), float(rng.uniform(0, 360))) for i in range(200)]
    summary = coverage_report(requests, bank, elevation_range=(0, 30), azimuth_range=(0, 360), out_dir=tmp_path)
    assert summary.samples == 200 and summary.distinct_poses == 10
    assert 0.8 < summary.viewpoint_entropy <= 1.0
    for name in (summary.viewpoint_plot, summary.pose_plot):
        with Image.open(name) as image:
            assert image.size[0] > 300 and np.asarray(image).std() > 5
