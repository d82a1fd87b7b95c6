"""Measure how much wider than the bare body a dressed pedestrian's person mask is
(``posedive.fitting.clothing.STREET_CLOTHING``), and what the calibration does to fitted weights.

    python benchmarks/clothing_calibration.py

Per slice of the width profile, the mean residual ``mask - body`` of the real vtest crops
(``tests/fixtures/vtest_market``) against the body model in each crop's fitted pose with the
population's mean shape, less the same on renders of bare anny bodies of known builds. The
calibration identities are the 8 outside the demo's training split; the 12 demo identities are
measured alike as a check. The calibration is measured again against the population's male or
female mean shape, by each calibration identity's gender labelled by eye
(``tests/fixtures/vtest_market/genders.json``), as a check of the assumption that they average the
population. The demo identities are then fitted without the calibration (``before``), with gender
fitted on the calibrated masks too (``gender_calibrated``: it read the calibration's narrow waist as a
woman's build) and with the default (``after``: gender from the uncalibrated masks, weight and height
from the calibrated ones): values per identity, the spread of each identity's per-image weights, and
how many of the labelled men come out male (gender < 0.5). Results:
``benchmarks/results/clothing_calibration.json``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the render-recovery test's builds, views and pose
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import machine, write_result  # noqa: E402

logger = logging.getLogger("benchmarks.clothing_calibration")
MARKET = ROOT / "tests" / "fixtures" / "vtest_market"


def identities() -> dict[str, list[Path]]:
    """Every person's crops over the three splits, by pid (no junk, no distractors)."""
    found: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(MARKET.rglob("*.jpg")):
        pid = path.name.split("_")[0]
        if pid.isdigit() and int(pid) > 0:
            found[pid].append(path)
    return dict(found)


def demo_pids() -> set[str]:
    return {path.name.split("_")[0] for path in (MARKET / "bounding_box_train").glob("*.jpg")}


def main() -> None:
    from test_fitting_shape import BUILDS, HEIGHT, VIEWS, WIDTH
    from test_fitting_synthetic import walking_pose

    from posedive.body.models import AnnyBody
    from posedive.body.population import AnnyPopulation
    from posedive.body.shape import ANNY_PHENOTYPES
    from posedive.conditions.render import MeshRasterizer
    from posedive.fitting import ShapeEstimator, ShapeFitConfig, Skeleton, observe_shapes
    from posedive.fitting.clothing import STREET_CLOTHING
    from posedive.geometry.cameras import camera_for
    from posedive.pose.blazepose import BlazePoseEstimator
    from posedive.video.inputs import read_rgb

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    body = AnnyBody()
    skeleton = Skeleton.from_body(body)
    bare = ShapeEstimator(body, ShapeFitConfig(clothing="none"))
    street = ShapeEstimator(body, ShapeFitConfig(clothing="street"))
    gender_calibrated = ShapeEstimator(body, ShapeFitConfig(clothing="street", uncalibrated=[]))
    weight, gender = ANNY_PHENOTYPES.index("weight"), ANNY_PHENOTYPES.index("gender")
    labels = json.loads((MARKET / "genders.json").read_text())
    labels = {**labels["calibration"], **labels["demo"]}
    people = AnnyPopulation().sample_values(np.random.default_rng(1), 20_000)
    sex_mean = {"M": people[people[:, gender] <= 0.5].mean(axis=0), "F": people[people[:, gender] > 0.5].mean(axis=0)}

    def residuals(observations, shape) -> list[np.ndarray]:
        rows = []
        for o in observations:
            reason, target = bare._target(o)
            if reason is None:
                rows.append(target - bare.profiles(o.fit, np.asarray(shape)[None], o.keypoints, o.width, o.height)[0])
        return rows

    with BlazePoseEstimator(segmentation=True) as segmenting:
        real = {pid: observe_shapes([read_rgb(p) for p in paths], skeleton, estimator=segmenting)
                for pid, paths in identities().items()}  # fmt: skip
        rasterizer = MeshRasterizer(WIDTH, HEIGHT)
        rendered = []
        try:
            for phenotype in BUILDS.values():
                images = []
                for k, (elevation, azimuth) in enumerate(VIEWS):
                    posed = body.forward(walking_pose(1.0 if k % 2 else -1.0)[None], shape=phenotype)
                    camera = camera_for(posed.vertices[0], elevation_deg=elevation, azimuth_deg=azimuth,
                                        fov_deg=30.0, width=WIDTH, height=HEIGHT)  # fmt: skip
                    images.append(rasterizer.render(posed.vertices[0], posed.faces, camera).normal)
                rendered.append((phenotype.values(), observe_shapes(images, skeleton, estimator=segmenting)))
        finally:
            rasterizer.close()

    demo = demo_pids()
    mean = bare.space.mean
    calibration = [r for pid, obs in real.items() if pid not in demo for r in residuals(obs, mean)]
    check = [r for pid, obs in real.items() if pid in demo for r in residuals(obs, mean)]
    renders = [r for truth, obs in rendered for r in residuals(obs, truth)]
    render_bias = np.nanmean(renders, axis=0)
    measured = np.nanmean(calibration, axis=0) - render_bias
    by_gender = [r for pid, obs in real.items() if pid not in demo for r in residuals(obs, sex_mean[labels[pid]])]
    fitted = {}
    for pid in sorted(demo):
        row = {}
        for name, estimator in (("before", bare), ("gender_calibrated", gender_calibrated), ("after", street)):
            answer = estimator.identity(real[pid], np.random.default_rng(int(pid)))
            own = [i.values[weight] for i in answer.images if i.used]
            row[name] = {"weight": answer.estimate.values[weight], "weight_spread": answer.estimate.spread[weight],
                         "gender": answer.estimate.values[gender], "per_image_weights": own,
                         "source": answer.estimate.source, "uncalibrated": answer.estimate.uncalibrated,
                         "values": dict(zip(ANNY_PHENOTYPES, answer.estimate.values))}  # fmt: skip
        fitted[pid] = {"gender_labelled": labels[pid], **row}
        logger.info("%s (%s) weight %.2f -> %.2f, gender %.2f (calibrated %.2f) -> %.2f", pid, labels[pid],
                    row["before"]["weight"], row["after"]["weight"], row["before"]["gender"],
                    row["gender_calibrated"]["gender"], row["after"]["gender"])  # fmt: skip
    men = [pid for pid in fitted if labels[pid] == "M"]
    after = [row["after"]["weight"] for row in fitted.values()]
    result = {
        "machine": machine(),
        "calibration_identities": sorted(set(real) - demo),
        "calibration_crops": len(calibration),
        "street_clothing_measured": measured.tolist(),
        "street_clothing_committed": list(STREET_CLOTHING),
        "standard_error": (np.nanstd(calibration, axis=0) / np.sqrt(len(calibration))).tolist(),
        "person_to_person_sd": np.nanstd(calibration, axis=0).tolist(),
        "street_clothing_measured_against_labelled_gender": (np.nanmean(by_gender, axis=0) - render_bias).tolist(),
        "sex_mean_shapes": {sex: dict(zip(ANNY_PHENOTYPES, values.tolist())) for sex, values in sex_mean.items()},
        "demo_identities_measured_alike": (np.nanmean(check, axis=0) - render_bias).tolist(),
        "render_bias": render_bias.tolist(),
        "demo_fits": fitted,
        "demo_weights_after": {"mean": float(np.mean(after)), "sd": float(np.std(after)),
                               "min": float(np.min(after)), "max": float(np.max(after))},  # fmt: skip
        "demo_men_fitted_male": {name: sum(fitted[pid][name]["gender"] < 0.5 for pid in men)
                                 for name in ("before", "gender_calibrated", "after")},  # fmt: skip
        "demo_men": len(men),
    }
    write_result(ROOT / "benchmarks" / "results" / "clothing_calibration.json", result, logger)


if __name__ == "__main__":
    main()
