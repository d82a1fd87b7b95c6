"""Throughput of the conditions stage on this machine's CPUs (run by hand).

    python benchmarks/conditions.py --sets 200 --processes 1 2

A full condition set is: pose the body (anny, retargeted from SMPL-24), place the camera, render
depth + normals with pyrender (EGL), project and draw the OpenPose skeleton, encode the maps. The
cache is off, so every set is rendered. Poses come from the built-in DeepMimic bank, viewpoints
uniformly from elevation [0, 30] x azimuth [0, 360] degrees. Each process holds one renderer, as the
gallery's workers do (one llvmpipe thread each when there are several); its warm-up (model load, first forward pass, GL context) is not timed.

The single-process run also times each step. Results, with the machine's load average (the CPUs may
be shared), go to ``benchmarks/results/conditions.json``, compared with the per-core target of 10
sets/s and the generator's 25 images/s per GPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

logger = logging.getLogger("benchmarks.conditions")

PER_CORE_TARGET = 10.0  # condition sets/s per core
GENERATOR_TARGET_RATE = 25.0  # images/s per GPU
_WORKER: dict = {}


def _spec():
    from posedive.conditions.posebank import builtin_bank_path, load_builtin_bank
    from posedive.conditions.renderer import RendererSpec

    load_builtin_bank("deepmimic")
    return RendererSpec(bank_path=builtin_bank_path("deepmimic"), cache_root=None)


def _requests(count: int, seed: int):
    from posedive.conditions.gallery import sample_requests
    from posedive.conditions.posebank import load_builtin_bank

    ids = [str(i) for i in load_builtin_bank("deepmimic").ids]
    return sample_requests(ids, count, (0.0, 30.0), (0.0, 360.0), np.random.default_rng(seed))


def _init(spec, pool_worker: bool = True) -> None:
    if pool_worker:  # as the gallery's workers do: one rasterizer thread per process
        os.environ.setdefault("LP_NUM_THREADS", "1")
    import torch

    from posedive.conditions.renderer import BodyConditionRenderer

    torch.set_num_threads(1)
    renderer = BodyConditionRenderer(spec)
    renderer.render(_requests(4, seed=999))  # warm-up: model, first forward, GL context
    _WORKER["renderer"] = renderer


def _work(requests) -> int:
    return len(_WORKER["renderer"].render(requests))


def run(spec, count: int, processes: int, batch: int) -> dict:
    requests = _requests(count, seed=processes)
    chunks = [requests[i : i + batch] for i in range(0, len(requests), batch)]
    if processes == 1:
        _init(spec, pool_worker=False)
        started = time.perf_counter()
        done = sum(_work(chunk) for chunk in chunks)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes, initializer=_init, initargs=(spec,)) as pool:
            pool.map(_work, [_requests(2, seed=k) for k in range(processes)])  # all workers warm
            started = time.perf_counter()
            done = sum(pool.imap_unordered(_work, chunks))
    seconds = time.perf_counter() - started
    return {"processes": processes, "sets": done, "seconds": round(seconds, 3), "sets_per_s": round(done / seconds, 2)}


def step_times(spec, count: int) -> dict:
    """Milliseconds per set for each step, single process."""
    import torch

    from posedive.conditions.render import draw_skeleton, encode_depth
    from posedive.conditions.renderer import BodyConditionRenderer
    from posedive.geometry.cameras import camera_for, project

    torch.set_num_threads(1)
    renderer = BodyConditionRenderer(spec)
    renderer.render(_requests(4, seed=998))
    requests = _requests(count, seed=7)
    totals = {"body_forward": 0.0, "camera": 0.0, "rasterize_depth_normal": 0.0, "skeleton": 0.0, "encode_depth": 0.0}
    for request in requests:
        t0 = time.perf_counter()
        body = renderer.body.forward(renderer.bank.pose(request.pose_id)[None])
        t1 = time.perf_counter()
        camera = camera_for(body.vertices[0], elevation_deg=request.elevation_deg, azimuth_deg=request.azimuth_deg,
                            fov_deg=spec.fov_deg, width=spec.width, height=spec.height)  # fmt: skip
        t2 = time.perf_counter()
        maps = renderer.rasterizer.render(body.vertices[0], body.faces, camera)
        t3 = time.perf_counter()
        keypoints = project(body.keypoints[0], camera)
        keypoints[:, 2] = 1.0
        draw_skeleton(keypoints, spec.width, spec.height)
        t4 = time.perf_counter()
        encode_depth(maps.depth_m)
        t5 = time.perf_counter()
        for key, value in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            totals[key] += value
    renderer.close()
    return {key: round(1000 * value / count, 2) for key, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=200, help="condition sets per run")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--batch", type=int, default=8, help="requests per render() call")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "conditions.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    spec = _spec()
    load_before = [round(v, 2) for v in os.getloadavg()]
    steps = step_times(spec, min(args.sets, 100))
    logger.info("per-step ms: %s", steps)
    runs = []
    for processes in args.processes:
        result = run(replace(spec), args.sets, processes, args.batch)
        logger.info("%d process(es): %.2f condition sets/s", processes, result["sets_per_s"])
        runs.append(result)
    best = max(r["sets_per_s"] for r in runs)
    report = {
        "benchmark": "full condition sets: anny pose + camera + depth/normal (pyrender EGL) + skeleton",
        "image_size": [spec.width, spec.height],
        "step_ms_single_process": steps,
        "runs": runs,
        "best_sets_per_s": best,
        "per_core_target_sets_per_s": PER_CORE_TARGET,
        "generator_target_images_per_s_per_gpu": GENERATOR_TARGET_RATE,
        "gpus_one_machine_keeps_up_with": round(best / GENERATOR_TARGET_RATE, 2),
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
