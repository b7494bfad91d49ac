"""BDF coefficients and the clock that lands on milestones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from solver.time.schemes import (
    Clock,
    StepControl,
    bdf_coefficients,
    divided_difference,
    local_error,
    order_of,
    output_times,
)


@pytest.mark.parametrize("scheme, order", [("euler", 1), ("bdf2", 2)])
@pytest.mark.parametrize("ratio", [1.0, 0.5, 1.7])
def test_bdf_is_exact_for_polynomials_of_its_order(scheme, order, ratio):
    dt_prev, dt = 0.3, 0.3 * ratio
    c0, c1, c2 = bdf_coefficients(scheme, dt, dt_prev)
    t1, t0, tm = dt + dt_prev, dt_prev, 0.0  # new, current, previous time levels
    for p in range(order + 1):
        exact = p * t1 ** (p - 1) if p else 0.0
        approx = c0 * t1**p + c1 * t0**p + (c2 * tm**p if c2 else 0.0)
        assert approx == pytest.approx(exact, abs=1e-12)


def test_first_bdf2_step_is_backward_euler():
    assert bdf_coefficients("bdf2", 0.1, None) == bdf_coefficients("euler", 0.1, None)


def test_constant_step_bdf2_coefficients():
    c = bdf_coefficients("bdf2", 0.5, 0.5)
    assert c == pytest.approx((3.0, -4.0, 1.0))


def test_clock_hits_milestones_exactly():
    clock = Clock(end=1.0, dt=0.3, milestones=[0.5])
    visited = []
    while not clock.done:
        step = clock.next_step()
        clock.advance(step)
        visited.append(clock.t)
    assert visited == pytest.approx([0.3, 0.5, 0.8, 1.0])
    assert 0.5 in visited and visited[-1] == 1.0


def test_clock_avoids_sliver_steps():
    clock = Clock(end=1.0, dt=0.1)
    n = 0
    while not clock.done:
        clock.advance(clock.next_step())
        n += 1
    assert n == 10 and clock.t == 1.0


def test_output_times_include_end():
    assert output_times(1.0, 0.25) == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    times = output_times(1.0, 0.3)
    assert times[-1] == 1.0 and len(times) == 5
    assert math.isclose(output_times(300.0, 5.0)[-1], 300.0)


def test_milestones_rising_falling_and_undefined():
    from solver.fem.readouts import milestones

    t = [0, 1, 2, 3, 4]
    assert milestones(t, [0.0, 0.2, 0.6, 0.95, 1.0]) == {"t50": 2, "t90": 3}
    assert milestones(t, [1.0, 0.8, 0.4, 0.05, 0.0]) == {"t50": 2, "t90": 3}
    assert milestones(t, [float("nan"), 0.0, 0.5, 1.0, 1.0]) == {"t50": 2, "t90": 3}
    assert milestones(t, [0.3] * 5) == {"t50": None, "t90": None}


# -- local error estimates and step control ---------------------------------------------
def _one_step(scheme_order: int, times: list[float], y, dy) -> tuple[float, float, tuple]:
    """Solve y' = dy(t) for one step to times[0] from exact past values; (numeric, exact, c)."""
    dt = times[0] - times[1]
    dt_prev = times[1] - times[2] if scheme_order == 2 else None
    c = bdf_coefficients("bdf2" if scheme_order == 2 else "euler", dt, dt_prev)
    past = c[1] * y(times[1]) + (c[2] * y(times[2]) if scheme_order == 2 else 0.0)
    return (dy(times[0]) - past) / c[0], y(times[0]), c


@pytest.mark.parametrize("ratio", [0.5, 1.0, 1.7])
def test_bdf2_error_estimate_is_the_local_error_of_a_cubic(ratio):
    """For y = t³ (y''' = 6), the estimate from divided differences of the computed
    values matches the true local error of variable-step BDF2 to O(dt)."""
    y, dy = (lambda t: t**3), (lambda t: 3 * t**2)
    dt = 1e-2
    times = [1.0 + dt, 1.0, 1.0 - dt / ratio, 1.0 - dt / ratio - dt / ratio**2]
    numeric, exact, c = _one_step(2, times, y, dy)
    estimate = local_error(2, c, times, [numeric, *(y(t) for t in times[1:])])
    assert estimate == pytest.approx(numeric - exact, rel=0.02)


def test_backward_euler_error_estimate_is_the_local_error_of_a_quadratic():
    y, dy = (lambda t: 2 * t**2), (lambda t: 4 * t)
    times = [1.01, 1.0, 0.99]
    numeric, exact, c = _one_step(1, times, y, dy)
    estimate = local_error(1, c, times, [numeric, y(1.0), y(0.99)])
    assert estimate == pytest.approx(numeric - exact, rel=0.02)


def test_error_estimate_needs_enough_past_states():
    assert local_error(2, (1.0, -1.0, 0.0), [1.0, 0.9, 0.8], [1.0, 1.0, 1.0]) is None
    assert local_error(1, (1.0, -1.0, 0.0), [1.0, 0.9], [1.0, 1.0]) is None
    assert order_of("bdf2", None) == 1 and order_of("bdf2", 0.1) == 2
    assert order_of("euler", 0.1) == 1


def test_step_control_grows_and_shrinks_within_bounds():
    control = StepControl(rtol=1e-3, atol=1e-6, dt_min=1e-6, dt_max=10.0)
    assert control.factor(0.0, 2) == control.grow == 2.0  # ω < 1 + √2: BDF2 stays stable
    assert control.factor(1e6, 2) == control.shrink
    assert control.factor(1.0, 2) == pytest.approx(0.9)
    # error per unit step: err ∝ dt^p, so halving the error allows 2^(1/p) more dt
    assert control.factor(0.5, 2) == pytest.approx(0.9 * 2**0.5)
    w = control.weights(np.array([2.0, -1.0]), np.array([1.0, -3.0]))
    assert w == pytest.approx([1 / (1e-6 + 2e-3), 1 / (1e-6 + 3e-3)])


def test_balanced_clock_splits_the_approach_to_a_milestone():
    clock = Clock(end=10.0, dt=3.0, milestones=[5.0], balance=True)
    assert clock.next_step() == 2.5  # 5 s in two steps of 2.5, not 3 + 2
    clock.advance(2.5)
    assert clock.next_step() == 2.5
    clock.advance(2.5)
    assert clock.t == 5.0 and clock.reached([5.0])
    plain = Clock(end=10.0, dt=3.0, milestones=[5.0])
    assert plain.next_step() == 3.0


def test_divided_difference_of_a_polynomial():
    times = [0.3, 0.1, -0.2, -0.5]
    values = [np.array([t**3 - t]) for t in times]
    assert divided_difference(times, values)[0] == pytest.approx(1.0)
