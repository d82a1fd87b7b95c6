"""Cost of body-shape estimation per identity (``posedive.fitting.shape``) on one CPU core.

    taskset -c 0 python benchmarks/shape.py [--images 17] [--identities 3]

An identity here is ``--images`` real 64x128 pedestrian crops (``tests/fixtures/vtest_market``, taken
in order and repeated as needed; Market-1501 has ~17 training images per identity). Three parts are
timed separately, each on one torch thread:

* BlazePose with person segmentation, one image at a time (MediaPipe runs on the CPU only);
* the body fitter (``fit_observations``), the identity's images in one batch, default ``FitConfig``;
* the shape fit (``ShapeEstimator.identity``), default ``ShapeFitConfig``.

Each part is reported as wall-clock time and as the CPU time the process used (``process_time``:
on a shared machine the wall clock also counts other processes' turns on the core, the CPU time
does not, so it is the better estimate of the cost on a core of one's own). Results, with the
machine's load average, go to ``benchmarks/results/shape_fit.json``, with what they imply for
Market-1501's 751 training identities in one process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger("benchmarks.shape")
ROOT = Path(__file__).resolve().parent.parent
MARKET1501_IDENTITIES = 751
PARTS = ("blazepose", "body_fit", "shape_fit", "total")


def crops(count: int, offset: int) -> list[np.ndarray]:
    from posedive.video.inputs import read_rgb

    folder = ROOT / "tests" / "fixtures" / "vtest_market"
    paths = sorted(p for p in folder.rglob("*.jpg") if not p.name.startswith(("-1", "0000")))  # people only
    return [read_rgb(paths[(offset + i) % len(paths)]) for i in range(count)]


def main() -> None:
    import torch

    from posedive.body.models import AnnyBody
    from posedive.fitting import FitConfig, ShapeEstimator, ShapeFitConfig, ShapeObservation, Skeleton, fit_observations
    from posedive.fitting.landmarks import observation_from_blazepose
    from posedive.pose.blazepose import BlazePoseEstimator

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=17, help="images per identity")
    parser.add_argument("--identities", type=int, default=3, help="identities timed (different crops each)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "shape_fit.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)

    body = AnnyBody()
    skeleton = Skeleton.from_body(body)
    estimator = ShapeEstimator(body, ShapeFitConfig())
    fit_config = FitConfig()
    rows = []
    with BlazePoseEstimator(segmentation=True) as segmenting:
        segmenting.analyse(crops(2, 0))  # warm-up
        body.forward(np.zeros((1, 72)), shape=estimator.space.mean)
        for identity in range(args.identities):
            images = crops(args.images, identity * args.images)
            clock = [(time.perf_counter(), time.process_time())]
            results = segmenting.analyse(images)
            clock.append((time.perf_counter(), time.process_time()))
            observations = [
                observation_from_blazepose(r.landmarks, r.world_landmarks, i.shape[1], i.shape[0])
                for r, i in zip(results, images)
            ]
            fits = fit_observations(observations, skeleton, fit_config)
            clock.append((time.perf_counter(), time.process_time()))
            shapes = [
                ShapeObservation(
                    np.asarray(r.estimate.keypoints, float),
                    r.segmentation,
                    f if r.person_found else None,
                    *i.shape[1::-1],
                )
                for r, f, i in zip(results, fits, images)
            ]
            answer = estimator.identity(shapes, np.random.default_rng(identity))
            clock.append((time.perf_counter(), time.process_time()))
            row = {"images": len(images)}
            for kind, column in (("wall", 0), ("cpu", 1)):
                for part, (a, b) in zip(PARTS, ((0, 1), (1, 2), (2, 3), (0, 3))):
                    row[f"{part}_{kind}_ms"] = 1000 * (clock[b][column] - clock[a][column])
            row |= {
                "images_used": answer.estimate.images_used,
                "source": answer.estimate.source,
                "confidence": answer.estimate.confidence,
            }
            rows.append(row)
            logger.info(
                "identity %d (CPU time): BlazePose %.0f ms, body fit %.0f ms, shape fit %.0f ms, total %.0f ms "
                "(wall %.0f ms; %d/%d images used)",
                identity, row["blazepose_cpu_ms"], row["body_fit_cpu_ms"], row["shape_fit_cpu_ms"], row["total_cpu_ms"],
                row["total_wall_ms"], row["images_used"], row["images"],
            )  # fmt: skip
    median = {key: statistics.median(r[key] for r in rows) for key in rows[0] if key.endswith("_ms")}
    result = {
        "machine": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "images_per_identity": args.images,
        "shape_fit_config": ShapeFitConfig().model_dump(mode="json"),
        "fit_config": fit_config.model_dump(mode="json"),
        "identities": rows,
        "median_ms_per_identity": median,
        "market1501": {
            "identities": MARKET1501_IDENTITIES,
            "hours_one_core": MARKET1501_IDENTITIES * median["total_cpu_ms"] / 3.6e6,
            "hours_one_core_shape_fit_only": MARKET1501_IDENTITIES * median["shape_fit_cpu_ms"] / 3.6e6,
            "hours_wall_clock_here": MARKET1501_IDENTITIES * median["total_wall_ms"] / 3.6e6,
            "note": "BlazePose + body fit + shape fit of every identity's images, one process on one core (CPU time)",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    logger.info(
        "median per identity of %d images (CPU time): %.0f ms (shape fit %.0f ms); Market-1501: %.2f h on one core; %s",
        args.images, median["total_cpu_ms"], median["shape_fit_cpu_ms"], result["market1501"]["hours_one_core"],
        args.out,
    )  # fmt: skip


if __name__ == "__main__":
    main()
