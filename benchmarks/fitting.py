"""Throughput of body fitting (``posedive.fitting``), batched, on CPU and on a GPU when there is one.

    python benchmarks/fitting.py --batches 1 16 64 256 --threads 1 2 [--device cuda]

Two parts are timed separately because they scale differently:

* the optimiser (``fit_observations``): observations of posed anny bodies seen from random viewpoints
  (2D pixels with 1 px noise and hip-centred 3D points with 2 cm noise, as BlazePose would report them),
  fitted in batches with the default ``FitConfig``; reported as fits per second per batch size;
* BlazePose on real 64x128 crops (``tests/fixtures/vtest_market``), one image at a time (MediaPipe
  runs on the CPU only).

Results, with the machine's load average (the CPUs may be shared), go to
``benchmarks/results/fitting-<device>.json``, with what the rate implies for a stats run over MSMT17
(126,441 images).
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

logger = logging.getLogger("benchmarks.fitting")
MSMT17_IMAGES = 126_441
ROOT = Path(__file__).resolve().parent.parent


def synthetic_observations(body, count: int, rng: np.random.Generator):
    from posedive.fitting import Observation
    from posedive.fitting.skeleton import FIT_POINTS
    from posedive.geometry.cameras import camera_for, project
    from posedive.geometry.rotations import SMPL_JOINTS
    from posedive.schema import OPENPOSE18_KEYPOINTS

    poses = np.zeros((count, 24, 3))
    for name, scale in (("left_hip", 0.4), ("right_hip", 0.4), ("left_knee", 0.3), ("right_knee", 0.3), ("spine1", 0.1)):
        poses[:, SMPL_JOINTS.index(name), 0] = rng.normal(0, scale, count)
    poses[:, SMPL_JOINTS.index("left_knee"), 0] = np.abs(poses[:, SMPL_JOINTS.index("left_knee"), 0])
    poses[:, SMPL_JOINTS.index("right_knee"), 0] = np.abs(poses[:, SMPL_JOINTS.index("right_knee"), 0])
    poses[:, SMPL_JOINTS.index("left_shoulder"), 2] = -1.2
    poses[:, SMPL_JOINTS.index("right_shoulder"), 2] = 1.2
    bodies = body.forward(poses.reshape(count, 72))
    observations = []
    for index in range(count):
        camera = camera_for(
            bodies.vertices[index], elevation_deg=rng.uniform(0, 30), azimuth_deg=rng.uniform(0, 360), fov_deg=30, width=64, height=128
        )
        named = {n: bodies.keypoints[index][OPENPOSE18_KEYPOINTS.index(n)] for n in OPENPOSE18_KEYPOINTS}
        named["left_foot_index"] = bodies.joints[index][SMPL_JOINTS.index("left_foot")]
        named["right_foot_index"] = bodies.joints[index][SMPL_JOINTS.index("right_foot")]
        world = np.stack([named[n] for n in FIT_POINTS]).astype(np.float64)
        pixels = project(world, camera)[:, :2] + rng.normal(0, 1.0, (len(world), 2))
        in_camera = world @ np.asarray(camera.R).T
        hips = in_camera[[FIT_POINTS.index("left_hip"), FIT_POINTS.index("right_hip")]].mean(0)
        points = in_camera - hips + rng.normal(0, 0.02, in_camera.shape)
        keypoints = np.concatenate([pixels, np.ones((len(world), 1))], axis=1)
        observations.append(Observation(keypoints.astype(np.float32), points.astype(np.float32), 64, 128))
    return observations


def time_blazepose(limit: int) -> dict:
    from posedive.pose.blazepose import BlazePoseEstimator
    from posedive.video.inputs import read_rgb

    paths = sorted((ROOT / "tests" / "fixtures" / "vtest_market").rglob("*.jpg"))[:limit]
    images = [read_rgb(p) for p in paths]
    with BlazePoseEstimator() as estimator:
        estimator.analyse(images[:2])  # warm-up
        start = time.perf_counter()
        results = estimator.analyse(images)
        elapsed = time.perf_counter() - start
    return {
        "images": len(images),
        "seconds": elapsed,
        "ms_per_image": 1000 * elapsed / len(images),
        "found": sum(r.person_found for r in results),
    }


def main() -> None:
    import torch

    from posedive.body.models import AnnyBody
    from posedive.fitting import FitConfig, Skeleton, fit_observations

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--blazepose-images", type=int, default=60)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--save-inputs", type=Path, default=None, help="write skeleton + observations to this .npz")
    parser.add_argument("--inputs", type=Path, default=None, help="read them from a .npz (a machine without anny)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from posedive.fitting import Observation

    if args.inputs is not None:
        data = np.load(args.inputs)
        skeleton = Skeleton(model="anny", joints=data["joints"], points=data["points"])
        pool = [Observation(k, w, 64, 128) for k, w in zip(data["keypoints"], data["world"])]
    else:
        body = AnnyBody()
        skeleton = Skeleton.from_body(body)
        pool = synthetic_observations(body, max(args.batches), np.random.default_rng(0))
    if args.save_inputs is not None:
        np.savez_compressed(
            args.save_inputs, joints=skeleton.joints, points=skeleton.points,
            keypoints=np.stack([o.keypoints for o in pool]), world=np.stack([o.world for o in pool]),
        )  # fmt: skip
        return
    fit_observations(pool[:2], skeleton, FitConfig(iterations=5, camera_iterations=5), device=args.device)  # warm-up
    rows = []
    for threads in args.threads if args.device == "cpu" else [None]:
        for batch in args.batches:
            config = FitConfig(threads=threads)
            if args.device != "cpu":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fits = fit_observations(pool[:batch], skeleton, config, device=args.device)
            if args.device != "cpu":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            good = [f for f in fits if f.success]
            row = {
                "device": args.device,
                "threads": threads,
                "batch": batch,
                "seconds": elapsed,
                "fits_per_second": batch / elapsed,
                "success": len(good),
                "mean_error_2d_px": float(np.mean([f.error_2d_px for f in good])) if good else None,
            }
            rows.append(row)
            logger.info("%s threads=%s batch=%d: %.1f fits/s (%.2f s)", args.device, threads, batch, row["fits_per_second"], elapsed)
    try:
        blazepose = time_blazepose(args.blazepose_images)
        logger.info("BlazePose: %.1f ms per 64x128 crop", blazepose["ms_per_image"])
    except ImportError as error:
        blazepose = {"error": str(error), "ms_per_image": 0.0}
    best = max(r["fits_per_second"] for r in rows)
    per_image_s = 1.0 / best + blazepose["ms_per_image"] / 1000.0
    result = {
        "machine": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "device_name": torch.cuda.get_device_name() if args.device != "cpu" else f"{os.cpu_count()} CPU cores",
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "fit_config": FitConfig().model_dump(mode="json"),
        "optimiser": rows,
        "blazepose": blazepose,
        "msmt17": {
            "images": MSMT17_IMAGES,
            "hours_one_process": MSMT17_IMAGES * per_image_s / 3600.0,
            "note": "BlazePose (CPU, one image at a time) plus the best batched fit rate, one process",
        },
    }
    out = args.out or ROOT / "benchmarks" / "results" / f"fitting-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    logger.info("MSMT17 (%d images): %.1f h in one process; results in %s", MSMT17_IMAGES, result["msmt17"]["hours_one_process"], out)


if __name__ == "__main__":
    main()
