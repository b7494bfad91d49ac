"""V2: coupled parabolic bulk–surface problem.

P1 in space (mesh convergence) and backward Euler / BDF2 in time (Δt
self-convergence on a fixed mesh).

    ∂t u − Δu = f_Ω in Ω,   ∂t v − Δ_Γ v + ∂ν u = f_Γ on Γ,   ∂ν u = βv − αu on Γ.

See README.md.
"""

from __future__ import annotations

import math

import pytest

from solver.config.runfile import from_dict
from solver.simulation import Simulation
from tests.verification.common import (
    COMM,
    TOLERANCE,
    Study,
    check_mms,
    document,
    eoc,
    norm_difference,
    restart_and_step,
    say,
)

CASES = {
    "disk": {
        "alpha": 1.0,
        "beta": 1.5,
        "u": "x*y*exp(-t)",
        "v": "2*x*y*exp(-t)",
        "f_omega": "-x*y*exp(-t)",
        "f_gamma": "8*x*y*exp(-t)",
        "sizes": [0.2, 0.1, 0.05, 0.025],
        "end": 0.5,
    },
    "sphere": {
        "alpha": 1.0,
        "beta": 2.0,
        "u": "x*y*z*exp(-t)",
        "v": "2*x*y*z*exp(-t)",
        "f_omega": "-x*y*z*exp(-t)",
        "f_gamma": "25*x*y*z*exp(-t)",
        "sizes": [0.2, 0.1, 0.05],
        "end": 0.25,
    },
}


def initial(exact: str) -> str:
    """The exact solution at t = 0."""
    return exact.replace("*exp(-t)", "")


def v2_document(shape: str, scheme: str = "bdf2", size: float | None = None) -> dict:
    c = CASES[shape]
    return document(
        shape,
        size or c["sizes"][0],
        {
            "u": {"compartment": "cytosol", "D": 1.0, "initial": initial(c["u"])},
            "v": {"compartment": "membrane", "D": 1.0, "initial": initial(c["v"])},
        },
        {
            "u_source": {"equation": "-> u", "rate": c["f_omega"]},
            "v_source": {"equation": "-> v", "rate": c["f_gamma"]},
            "exchange": {"equation": "u -> v", "rate": "alpha*u - beta*v"},
        },
        end=c["end"],
        dt=c["end"] / 10,
        scheme=scheme,
        parameters={"alpha": c["alpha"], "beta": c["beta"]},
    )


@pytest.mark.parametrize("shape", ["disk", "sphere"])
def test_v2_sources_solve_the_equations(shape):
    c = CASES[shape]
    check_mms(v2_document(shape), {"u": c["u"], "v": c["v"]})


def _study(shape, comm):
    c = CASES[shape]
    return Study(
        f"V2 coupled parabolic, {shape}, BDF2, dt = h/2, T = {c['end']}",
        v2_document(shape),
        {"u bulk": ("u", c["u"], "bulk"), "v surface": ("v", c["v"], "surface")},
        c["sizes"],
        comm,
        dt_of_size=lambda h: h / 2,
    )


def test_v2_disk_converges_at_orders_2_and_1():
    """Runs serially and under mpiexec."""
    _study("disk", COMM).check()


@pytest.mark.serial
def test_v2_ball_converges_at_orders_2_and_1():
    _study("sphere", COMM).check()


TIME_STEPS = [0.1, 0.05, 0.025, 0.0125]


@pytest.mark.parametrize("scheme, order", [("euler", 1), ("bdf2", 2)])
def test_v2_time_order_on_a_fixed_disk_mesh(scheme, order):
    """Self-convergence ‖w_Δt − w_Δt/2‖_L2 on one mesh (h = 0.1) to T = 1.

    The same Simulation is restarted for every Δt: same mesh and dofs, so the space
    error cancels in the differences."""
    end = 1.0
    sim = Simulation(from_dict(v2_document("disk", scheme, size=0.1)), COMM)
    finals = []
    for dt in TIME_STEPS:
        restart_and_step(sim, dt, end)
        assert math.isclose(sim.t, end, rel_tol=1e-12)
        finals.append({name: sim.species_function(name) for name in ("u", "v")})
    lines = [f"== V2 disk h = 0.1, {scheme}: ‖w_dt − w_dt/2‖_L2 at T = {end} =="]
    failed = []
    for name in ("u", "v"):
        diffs = [
            norm_difference(a[name], b[name]) for a, b in zip(finals, finals[1:], strict=False)
        ]
        rates = eoc(diffs, TIME_STEPS[:-1])
        lines.append(f"-- {name}")
        lines.append(f"{'dt':>8} {'difference':>11} {'EOC':>5}")
        for dt, d, r in zip(TIME_STEPS, diffs, [math.nan, *rates], strict=False):
            lines.append(f"{dt:8.4g} {d:11.4e} {r:5.2f}")
        if not rates[-1] >= order - TOLERANCE:
            failed.append(f"{name}: last EOC {rates[-1]:.3f} < {order} - {TOLERANCE}")
    text = "\n".join(lines)
    say(text)
    sim.problem.destroy()
    assert not failed, "\n".join(failed) + "\n" + text
