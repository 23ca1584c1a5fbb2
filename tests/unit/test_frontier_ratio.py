"""The frontier ratio R (docs/scoring.md): PeakPilot's cost against the whole HPA curve."""

from __future__ import annotations

import itertools
import math

import pytest

from peakplan.replay.scoring import (
    FRONTIER_TARGETS,
    frontier_ratio,
    interpolated_frontier_ratio,
)

# An HPA curve as the targets give it: cheaper and leaving more unserved as the target rises.
CURVE = {0.3: (400.0, 1.0), 0.5: (250.0, 2.0), 0.7: (180.0, 4.0), 0.9: (150.0, 8.0)}


@pytest.mark.parametrize(
    ("cost", "unserved", "r", "rc"),
    [
        # Between two settings: the cheapest one that serves at least as well is 0.5's (R);
        # halfway between 0.5 (250, 2) and 0.7 (180, 4) the HPA would pay 215 (Rc).
        (200.0, 3.0, 200.0 / 250.0, 200.0 / 215.0),
        # Serving as well as 0.7 exactly (a tie counts as "not above"): 0.7 is the comparison,
        # and on a setting Rc is R.
        (90.0, 4.0, 90.0 / 180.0, 90.0 / 180.0),
        # A tie within float noise still counts.
        (90.0, 4.0 - 1e-12, 90.0 / 180.0, 90.0 / 180.0),
        # As much unserved as the cheapest setting: compared with it (at or beyond either end
        # of the curve Rc follows R's rules).
        (300.0, 8.0, 300.0 / 150.0, 300.0 / 150.0),
        # More unserved than every setting: infinite, whatever the cost.
        (10.0, 8.5, math.inf, math.inf),
        # Less unserved than every setting: compared with the one that serves best (0.3's).
        (200.0, 0.5, 200.0 / 400.0, 200.0 / 400.0),
        (200.0, 1.0, 200.0 / 400.0, 200.0 / 400.0),
        (0.0, 0.0, 0.0, 0.0),
    ],
)
def test_frontier_ratio_scenarios(cost: float, unserved: float, r: float, rc: float) -> None:
    assert frontier_ratio(cost, unserved, CURVE) == pytest.approx(r)
    assert interpolated_frontier_ratio(cost, unserved, CURVE) == pytest.approx(rc)


def test_a_non_monotone_curve_takes_the_cheapest_eligible_setting() -> None:
    # 0.6 serves better than 0.5 here and is cheaper: it is the comparison.
    curve = {0.5: (250.0, 3.0), 0.6: (200.0, 2.5), 0.7: (180.0, 4.0)}
    assert frontier_ratio(100.0, 3.0, curve) == pytest.approx(100.0 / 200.0)


def test_ties_in_the_best_service_take_the_cheapest() -> None:
    curve = {0.3: (400.0, 0.0), 0.4: (300.0, 0.0), 0.5: (250.0, 1.0)}
    assert frontier_ratio(150.0, 0.0, curve) == pytest.approx(0.5)


def test_an_empty_curve_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one HPA setting"):
        frontier_ratio(1.0, 0.0, {})


def test_the_targets_are_030_to_095_in_steps_of_005() -> None:
    assert FRONTIER_TARGETS[0] == 0.30 and FRONTIER_TARGETS[-1] == 0.95
    assert len(FRONTIER_TARGETS) == 14
    steps = [b - a for a, b in itertools.pairwise(FRONTIER_TARGETS)]
    assert steps == pytest.approx([0.05] * 13)


def test_the_interpolation_skips_settings_another_one_beats() -> None:
    # 0.5 costs more than 0.6 and serves worse: the line runs from 0.6 (200, 2.5) to 0.7.
    curve = {0.5: (250.0, 3.0), 0.6: (200.0, 2.5), 0.7: (180.0, 4.0)}
    at_3 = 200.0 + (180.0 - 200.0) * (3.0 - 2.5) / (4.0 - 2.5)
    assert interpolated_frontier_ratio(100.0, 3.0, curve) == pytest.approx(100.0 / at_3)


def test_the_interpolated_ratio_is_never_below_r() -> None:
    # R takes the cheapest setting that serves as well; the line to the next cheaper setting
    # only lowers the HPA's cost, so Rc >= R everywhere along the curve.
    for unserved in [0.25 * k for k in range(0, 40)]:
        r = frontier_ratio(100.0, unserved, CURVE)
        rc = interpolated_frontier_ratio(100.0, unserved, CURVE)
        assert rc >= r * (1 - 1e-12)
    assert interpolated_frontier_ratio(100.0, 3.0, CURVE) > frontier_ratio(100.0, 3.0, CURVE)


def test_an_empty_curve_is_an_error_for_the_interpolated_ratio_too() -> None:
    with pytest.raises(ValueError, match="at least one HPA setting"):
        interpolated_frontier_ratio(1.0, 0.0, {})
