"""Re-ID ranking metrics: CMC, mAP and mINP under the Market-1501 protocol (pure NumPy).

Protocol (the one torchreid's ``eval_market1501`` and every Market-1501 / MSMT17 / CUHK03 paper use):

* each query ranks the whole gallery by ascending distance;
* gallery entries with the query's identity *and* the query's camera are removed (same-view
  duplicates would make the task trivial), and so are junk entries (pid -1);
  distractors (pid 0) stay in the ranking as ordinary non-matches;
* a query with no remaining true match is not counted;
* CMC at rank ``r`` is the fraction of counted queries whose first true match is at rank ``<= r``;
* AP is the mean, over the true matches, of the precision at each match's rank (no interpolation);
  mAP is its mean over counted queries;
* mINP (Ye et al., 2021) is the mean over counted queries of ``matches / rank of the last match``.

Entries at exactly the same distance are ranked in gallery order (as a stable sort would rank them),
so the metrics are a function of the inputs alone and not of a sort implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

JUNK_PID = -1

# Elements of the distance matrix processed at once: bounds the memory of the sorted copy.
_CHUNK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class EvalResult:
    """Metrics as fractions in [0, 1]; ``cmc[r]`` is the matching rate within the top ``r + 1``."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_queries: int  # queries that had at least one true match and were counted

    def rank(self, k: int) -> float:
        """Rank-k matching rate (``rank(1)`` is the usual R1)."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank {k} outside the computed CMC (1..{len(self.cmc)})")
        return float(self.cmc[k - 1])

    def as_dict(self) -> dict[str, float | int]:
        """Percentages the way papers print them, plus the number of counted queries."""
        out: dict[str, float | int] = {"mAP": round(100 * self.mAP, 2), "mINP": round(100 * self.mINP, 2)}
        for k in (1, 5, 10):
            if k <= len(self.cmc):
                out[f"R{k}"] = round(100 * self.rank(k), 2)
        out["num_queries"] = self.num_queries
        return out


def _as_ids(values, name: str, length: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{name} must be a 1-D array of length {length}, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _check_inputs(distmat, query_pids, gallery_pids, query_camids, gallery_camids, max_rank):
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (queries x gallery), got shape {distmat.shape}")
    num_q, num_g = distmat.shape
    if num_q == 0 or num_g == 0:
        raise ValueError(f"distmat is empty (shape {distmat.shape})")
    if not np.issubdtype(distmat.dtype, np.floating):
        distmat = distmat.astype(np.float64)
    if not np.isfinite(distmat).all():
        raise ValueError("distmat holds NaN or infinite distances")
    q_pids = _as_ids(query_pids, "query_pids", num_q)
    g_pids = _as_ids(gallery_pids, "gallery_pids", num_g)
    q_cams = _as_ids(query_camids, "query_camids", num_q)
    g_cams = _as_ids(gallery_camids, "gallery_camids", num_g)
    if (q_pids < 0).any():
        raise ValueError(f"query pids must be >= 0 (junk pid {JUNK_PID} belongs in no query set)")
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer, got {max_rank!r}")
    return distmat, q_pids, g_pids, q_cams, g_cams


def _positive_ranks(row: np.ndarray, valid: np.ndarray, positives: np.ndarray, sorted_valid: np.ndarray) -> np.ndarray:
    """1-based ranks of the true matches among the valid gallery entries of one query.

    ``sorted_valid`` is the row with invalid entries set to +inf, sorted. The rank of a match ``p`` is
    the number of valid entries before it, ``#{d < d_p} + #{d == d_p and index < p}``, plus one.
    """
    values = row[positives]  # positives are in gallery order, so a stable sort keeps ties in that order
    order = np.argsort(values, kind="stable")
    values, positives = values[order], positives[order]
    below = np.searchsorted(sorted_valid, values, side="left")
    tied = np.searchsorted(sorted_valid, values, side="right") - below
    # Matches tied with each other and with nothing else take consecutive ranks in gallery order.
    group_start = np.searchsorted(values, values, side="left")
    group_size = np.searchsorted(values, values, side="right") - group_start
    ranks = below + (np.arange(len(values)) - group_start) + 1
    mixed = np.flatnonzero(tied > group_size)
    for k in mixed:  # a match tied with a non-match: count the tied entries that come first
        p = positives[k]
        ranks[k] = below[k] + np.count_nonzero(valid[:p] & (row[:p] == values[k])) + 1
    return np.sort(ranks)


def evaluate(
    distmat,
    query_pids,
    gallery_pids,
    query_camids,
    gallery_camids,
    max_rank: int = 50,
) -> EvalResult:
    """CMC, mAP and mINP of a query x gallery distance matrix under the Market-1501 protocol.

    The protocol is stated in this module's docstring. ``max_rank`` is clamped to the gallery size.
    The sort that ranks the gallery runs on blocks of queries at once (NumPy's vectorised sort); the
    per-query work left is on the true matches only.

    Raises:
        ValueError: on shapes or dtypes that do not fit, non-finite distances, a negative query pid,
            or when no query has a true match left in the gallery.
    """
    distmat, q_pids, g_pids, q_cams, g_cams = _check_inputs(
        distmat, query_pids, gallery_pids, query_camids, gallery_camids, max_rank
    )
    num_q, num_g = distmat.shape
    max_rank = int(min(max_rank, num_g))
    first_hits = np.zeros(max_rank + 1, dtype=np.int64)  # first_hits[r]: queries whose first match is at rank r+1
    ap_sum = 0.0
    inp_sum = 0.0
    counted = 0
    rows = max(1, _CHUNK_ELEMENTS // num_g)
    not_junk = g_pids != JUNK_PID
    for start in range(0, num_q, rows):
        stop = min(start + rows, num_q)
        block = distmat[start:stop]
        same_pid = q_pids[start:stop, None] == g_pids[None, :]
        same_cam = q_cams[start:stop, None] == g_cams[None, :]
        valid = ~(same_pid & same_cam) & not_junk[None, :]
        matches = same_pid & valid
        has_match = matches.any(axis=1)
        if not has_match.any():
            continue
        sorted_valid = np.sort(np.where(valid, block, np.inf), axis=1)
        for i in np.flatnonzero(has_match):
            ranks = _positive_ranks(block[i], valid[i], np.flatnonzero(matches[i]), sorted_valid[i])
            hits = np.arange(1, len(ranks) + 1)
            ap_sum += float(np.mean(hits / ranks))
            inp_sum += len(ranks) / float(ranks[-1])
            first_hits[min(ranks[0], max_rank + 1) - 1] += 1
            counted += 1
    if counted == 0:
        raise InputError("no query has a true match in the gallery once same-camera matches are removed",
                         hint="evaluate on a query and gallery that share identities across cameras")
    cmc = np.cumsum(first_hits[:max_rank]) / counted
    return EvalResult(cmc=cmc, mAP=ap_sum / counted, mINP=inp_sum / counted, num_queries=counted)


def cosine_distance(query_features, gallery_features) -> np.ndarray:
    """``1 - cos(q, g)`` for every pair: rows are queries, columns gallery entries."""
    q = np.asarray(query_features, dtype=np.float32)
    g = np.asarray(gallery_features, dtype=np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"feature arrays must be (n, d) with the same d, got {q.shape} and {g.shape}")
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    return 1.0 - q @ g.T
