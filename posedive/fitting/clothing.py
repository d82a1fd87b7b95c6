"""How much wider than a bare body a dressed pedestrian's person mask is: the calibration of the
width profile for street photographs.

The body model is bare; the people in Re-ID crops wear jackets, coats and trousers, and on a
64x128 crop BlazePose's segmentation also bleeds a pixel or so beyond the person. Both widen every
slice of the profile (``shape_profile``), and an uncalibrated fit reads that as weight: on the
committed vtest crops every identity came out at weight 0.96-1.0, against the population's mean of
0.56 (sd 0.33).

``STREET_CLOTHING`` is the mean profile residual ``mask - body`` (statures, slices from the feet to the
head) of real crops against the body model in each crop's fitted pose with the population's mean
shape, less the same residual of renders of bare anny bodies of known builds (BlazePose's bias on
bare bodies, which the shape fit already lives with). It was measured on the 47 usable crops of the
8 vtest identities outside the demo's training split (0004, 0005, 0009, 0010, 0014, 0015, 0019,
0020); the 12 demo identities, measured alike, give the same profile within its standard error
(0.003-0.008 per slice). ``benchmarks/clothing_calibration.py`` repeats the measurement and writes
``benchmarks/results/clothing_calibration.json``.

What the numbers assume: that the calibration identities average the population's build, so their
mean excess width is clothing and mask, not body. The excess is largest at the calves (trousers
over the ankles), the waist and belly (jackets) and the head (hair, hats), about 0.02-0.06 statures
(3-10 cm on a 1.7 m person), and it varies from person to person by about 0.02-0.05 (a coat
against a shirt): the fit still reads a coated person as heavier than a shirted one of the same build.

Gender is not fitted on calibrated masks (``ShapeFitConfig.uncalibrated``): the excess is larger
at the waist than at the hips and shoulders, so the calibrated profile has a narrow waist, which
the fit reads as a woman's build. On the demo identities 9 of the 11 men labelled by eye came out
female (gender 0.42-0.82); fitted on the masks as they are, 10 of 11 come out male. Measured
against the population's male or female mean shape by each calibration identity's labelled gender,
the table moves by at most 0.003 statures (within its standard error), and leaves the drift as it is.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

ClothingCalibration = Literal["street", "none"]

# Mean excess width of the person mask over the bare body, per slice, feet (first) to head (last),
# in statures; at the slice centres of a 20-slice profile.
STREET_CLOTHING: tuple[float, ...] = (
    0.0096, 0.0368, 0.0471, 0.0387, 0.0180, 0.0181, 0.0183, 0.0238, 0.0064, 0.0129,
    0.0351, 0.0437, 0.0633, 0.0433, 0.0311, 0.0189, 0.0287, 0.0411, 0.0210, 0.0096,
)


def _centres(bins: int) -> np.ndarray:
    return (np.arange(bins) + 0.5) / bins


def clothing_widths(calibration: ClothingCalibration, bins: int) -> np.ndarray:
    """(bins,) the width a dressed person's mask adds to each profile slice (statures); zeros for
    ``none`` (bare bodies: renders of the body model). Other slice counts than the calibration's 20
    read the table at their slice centres."""
    if calibration == "none":
        return np.zeros(bins)
    table = np.asarray(STREET_CLOTHING)
    return np.interp(_centres(bins), _centres(len(table)), table)


__all__ = ["ClothingCalibration", "STREET_CLOTHING", "clothing_widths"]
