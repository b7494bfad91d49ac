"""V1: coupled elliptic bulk–surface problem (Elliott–Ranner class), P1, mesh convergence.

    −Δu + u = f_Ω in Ω,   −Δ_Γ v + v + ∂ν u = f_Γ on Γ,   ∂ν u = βv − αu on Γ.

The engine is time dependent: the steady problem is one backward-Euler step of
length dt = 1e8 from zero (the mass term adds an O(1/dt) = 1e-8 perturbation).
See README.md.
"""

from __future__ import annotations

import pytest

from tests.verification.common import COMM, Study, check_mms, document

HUGE = 1e8

CASES = {
    "disk": {
        "alpha": 1.0,
        "beta": 1.5,
        "u": "x*y",
        "v": "2*x*y",
        "f_omega": "x*y",
        "f_gamma": "12*x*y",
        "sizes": [0.2, 0.1, 0.05, 0.025],
    },
    # measured: 0.3/0.15/0.075 still pre-asymptotic for the bulk L2 norm (EOC 1.80, 1.89);
    # 0.2/0.1/0.05 gives 1.83, 1.95
    "sphere": {
        "alpha": 1.0,
        "beta": 2.0,
        "u": "x*y*z",
        "v": "2*x*y*z",
        "f_omega": "x*y*z",
        "f_gamma": "29*x*y*z",
        "sizes": [0.2, 0.1, 0.05],
    },
}


def v1_document(shape: str) -> dict:
    c = CASES[shape]
    return document(
        shape,
        c["sizes"][0],
        {
            "u": {"compartment": "cytosol", "D": 1.0, "initial": 0.0},
            "v": {"compartment": "membrane", "D": 1.0, "initial": 0.0},
        },
        {
            "u_decay": {"equation": "u ->", "rate": "u"},
            "u_source": {"equation": "-> u", "rate": c["f_omega"]},
            "v_decay": {"equation": "v ->", "rate": "v"},
            "v_source": {"equation": "-> v", "rate": c["f_gamma"]},
            # on the membrane: −∂ν u = αu − βv leaves the cytosol and enters v
            "exchange": {"equation": "u -> v", "rate": "alpha*u - beta*v"},
        },
        end=HUGE,
        dt=HUGE,
        scheme="euler",
        parameters={"alpha": c["alpha"], "beta": c["beta"]},
    )


@pytest.mark.parametrize("shape", ["disk", "sphere"])
def test_v1_sources_solve_the_steady_equations(shape):
    """The steady problem: ∂t u = ∂t v = 0 (the exact pair is time independent)."""
    c = CASES[shape]
    check_mms(v1_document(shape), {"u": c["u"], "v": c["v"]})


def _study(shape, comm):
    c = CASES[shape]
    return Study(
        f"V1 coupled elliptic, {shape}",
        v1_document(shape),
        {"u bulk": ("u", c["u"], "bulk"), "v surface": ("v", c["v"], "surface")},
        c["sizes"],
        comm,
    )


def test_v1_disk_converges_at_orders_2_and_1():
    """Runs serially and under mpiexec."""
    _study("disk", COMM).check()


@pytest.mark.serial
def test_v1_ball_converges_at_orders_2_and_1():
    _study("sphere", COMM).check()
