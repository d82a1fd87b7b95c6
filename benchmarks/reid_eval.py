"""Time ``posedive.reid.evaluate`` on a large query x gallery distance matrix (run by hand).

    python benchmarks/reid_eval.py --size 20000

Identities and cameras are drawn Market-1501-like (750 ids, 6 cameras); true matches are made closer
than most non-matches so that the ranking resembles a trained model's. The result is written
to ``benchmarks/results/reid_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from posedive.reid import evaluate

logger = logging.getLogger("benchmarks.reid_eval")


def make_case(size: int, identities: int, cameras: int, seed: int):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, identities + 1, size)
    g_pids = rng.integers(0, identities + 1, size)  # pid 0: distractors
    q_cams = rng.integers(1, cameras + 1, size)
    g_cams = rng.integers(1, cameras + 1, size)
    distmat = rng.random((size, size), dtype=np.float32)
    same = q_pids[:, None] == g_pids[None, :]
    distmat[same] *= np.float32(0.01)  # a true match beats ~99% of non-matches
    return distmat, q_pids, g_pids, q_cams, g_cams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000, help="queries = gallery entries")
    parser.add_argument("--identities", type=int, default=750)
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "reid_eval.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    case = make_case(args.size, args.identities, args.cameras, args.seed)
    times = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        result = evaluate(*case)
        times.append(time.perf_counter() - start)
        logger.info("run %d: %.2f s  mAP %.4f  R1 %.4f  mINP %.4f", repeat, times[-1], result.mAP, result.rank(1), result.mINP)
    record = {
        "benchmark": "posedive.reid.evaluate",
        "distmat": [args.size, args.size],
        "dtype": "float32",
        "identities": args.identities,
        "cameras": args.cameras,
        "seconds": [round(t, 3) for t in times],
        "best_s": round(min(times), 3),
        "queries_counted": result.num_queries,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "numpy": np.__version__, "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    logger.info("best of %d: %.2f s -> %s", args.repeats, min(times), args.out)


if __name__ == "__main__":
    main()
