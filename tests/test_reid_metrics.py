"""posedive.reid.evaluate against a literal, loop-by-loop implementation of the Market-1501 protocol."""

from __future__ import annotations

import numpy as np
import pytest

from posedive.errors import InputError
from posedive.reid import EvalResult, evaluate


def brute_force(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50):
    """The protocol written out one query and one gallery entry at a time (ties in gallery order)."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    cmc_sum = [0] * max_rank
    aps, inps = [], []
    for q in range(num_q):
        order = sorted(range(num_g), key=lambda g: (float(distmat[q, g]), g))
        kept = [g for g in order if g_pids[g] != -1 and not (g_pids[g] == q_pids[q] and g_cams[g] == q_cams[q])]
        hits = [1 if g_pids[g] == q_pids[q] else 0 for g in kept]
        if sum(hits) == 0:
            continue
        first = hits.index(1)
        for r in range(max_rank):
            if first <= r:
                cmc_sum[r] += 1
        found, precisions, last = 0, [], 0
        for position, hit in enumerate(hits, start=1):
            if hit:
                found += 1
                precisions.append(found / position)
                last = position
        aps.append(sum(precisions) / len(precisions))
        inps.append(found / last)
    n = len(aps)
    return [c / n for c in cmc_sum], sum(aps) / n, sum(inps) / n, n


def assert_same(result: EvalResult, reference):
    cmc, m_ap, m_inp, n = reference
    assert result.num_queries == n
    np.testing.assert_allclose(result.cmc, cmc, rtol=0, atol=1e-12)
    assert result.mAP == pytest.approx(m_ap, abs=1e-12)
    assert result.mINP == pytest.approx(m_inp, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    num_q, num_g = int(rng.integers(5, 40)), int(rng.integers(20, 120))
    g_pids = rng.integers(-1, 12, num_g)
    q_pids = rng.integers(0, 12, num_q)
    q_cams, g_cams = rng.integers(1, 4, num_q), rng.integers(1, 4, num_g)
    # Distances on a coarse grid on odd seeds, so ties between matches and non-matches are common.
    distmat = rng.random((num_q, num_g))
    if seed % 2:
        distmat = np.round(distmat * 5) / 5
    args = (distmat, q_pids, g_pids, q_cams, g_cams)
    assert_same(evaluate(*args, max_rank=10), brute_force(*args, max_rank=10))


def test_float32_and_small_chunks_match_brute_force(monkeypatch):
    import posedive.reid.metrics as metrics

    rng = np.random.default_rng(7)
    distmat = rng.random((30, 50)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, 5, 30), rng.integers(0, 5, 50)
    q_cams, g_cams = rng.integers(1, 3, 30), rng.integers(1, 3, 50)
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 120)  # several queries per block, several blocks
    args = (distmat, q_pids, g_pids, q_cams, g_cams)
    assert_same(evaluate(*args), brute_force(*args))


def test_hand_made_ranking():
    # One query (pid 1, camera 1). Gallery by distance: same-camera match (removed), a non-match,
    # a match, a distractor (pid 0), a junk entry (pid -1, removed), a match.
    distmat = np.array([[0.0, 0.1, 0.2, 0.3, 0.35, 0.4]])
    g_pids = [1, 2, 1, 0, -1, 1]
    g_cams = [1, 2, 2, 3, 2, 3]
    result = evaluate(distmat, [1], g_pids, [1], g_cams, max_rank=5)
    # Kept ranking: 2 (miss), 1 (hit at rank 2), 0 (miss), 1 (hit at rank 4).
    assert result.cmc.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert result.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert result.mINP == pytest.approx(2 / 4)
    assert result.num_queries == 1
    assert result.rank(1) == 0.0 and result.rank(2) == 1.0


def test_ties_rank_in_gallery_order():
    # Non-match (index 0) and match (index 1) at the same distance: the non-match comes first.
    first = evaluate(np.array([[0.5, 0.5, 0.9]]), [1], [2, 1, 3], [1], [2, 2, 2], max_rank=3)
    assert first.rank(1) == 0.0 and first.mAP == pytest.approx(1 / 2)
    # Swapped gallery order: the match comes first.
    second = evaluate(np.array([[0.5, 0.5, 0.9]]), [1], [1, 2, 3], [1], [2, 2, 2], max_rank=3)
    assert second.rank(1) == 1.0 and second.mAP == pytest.approx(1.0)


def test_all_matches_at_the_top_give_perfect_scores():
    distmat = np.array([[0.1, 0.2, 0.9, 0.8], [0.9, 0.8, 0.1, 0.2]])
    result = evaluate(distmat, [1, 2], [1, 1, 2, 2], [1, 1], [2, 3, 2, 3], max_rank=4)
    assert result.cmc.tolist() == [1.0] * 4 and result.mAP == 1.0 and result.mINP == 1.0


def test_queries_without_matches_are_not_counted():
    distmat = np.array([[0.1, 0.2], [0.3, 0.4], [0.2, 0.1]])
    # Query 0 (pid 5) has no match; query 1's only match shares its camera; query 2 matches at rank 2.
    result = evaluate(distmat, [5, 1, 1], [1, 2], [1, 1, 3], [1, 2], max_rank=2)
    assert result.num_queries == 1 and result.cmc.tolist() == [0.0, 1.0] and result.mAP == pytest.approx(0.5)
    with pytest.raises(InputError, match="no query has a true match"):
        evaluate(distmat[:2], [5, 1], [1, 2], [1, 1], [1, 2])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"distmat": np.zeros(3)}, "2-D"),
        ({"distmat": np.array([[np.nan, 0.0]])}, "NaN"),
        ({"query_pids": [1, 2]}, "query_pids"),
        ({"gallery_camids": [1.5, 2.0]}, "integers"),
        ({"query_pids": [-1]}, ">= 0"),
        ({"max_rank": 0}, "max_rank"),
    ],
)
def test_bad_input_raises_value_error(change, message):
    kwargs = {"distmat": np.array([[0.1, 0.2]]), "query_pids": [1], "gallery_pids": [1, 2],
              "query_camids": [1], "gallery_camids": [2, 2], "max_rank": 5}
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        evaluate(**kwargs)
