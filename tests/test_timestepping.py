"""BDF coefficients and the clock that lands on milestones."""

from __future__ import annotations

import math

import pytest

from solver.timestepping import Clock, bdf_coefficients, output_times


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
    from solver.metrics import milestones

    t = [0, 1, 2, 3, 4]
    assert milestones(t, [0.0, 0.2, 0.6, 0.95, 1.0]) == {"t50": 2, "t90": 3}
    assert milestones(t, [1.0, 0.8, 0.4, 0.05, 0.0]) == {"t50": 2, "t90": 3}
    assert milestones(t, [float("nan"), 0.0, 0.5, 1.0, 1.0]) == {"t50": 2, "t90": 3}
    assert milestones(t, [0.3] * 5) == {"t50": None, "t90": None}
