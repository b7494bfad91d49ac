"""Phosphorylation at the membrane, dephosphorylation in the cytosol: the steady state.

runs/phosphorylation (Meyers, Craig & Odde 2006; example 3 of SMART). In the ball of
radius R, D ΔA = k_p A with D ∂A/∂r = κ (A_tot − A) at r = R, κ = k_kin R/3. The
radial solution A(r) = B sinh(λr)/r, λ = √(k_p/D), gives

    B = κ A_tot / [D (λR cosh λR − sinh λR)/R² + κ sinh(λR)/R],
    mean A = (3/R³) ∫₀^R A r² dr = 3B (R cosh λR/λ − sinh λR/λ²)/R³.

Backward Euler's fixed point is the discrete steady state whatever dt, so the run to
t = 3 s (30 decay times 1/k_p) measures the space error only: the mean over the mesh,
∫A/|Ω_h|, converges at second order (P1 and the flat-faced ball both err by O(h²)).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from dolfinx import fem

from solver.config.runfile import load
from solver.simulation import Simulation
from solver.time.loop import integrate
from tests.verification.common import COMM, TOLERANCE, say

CASE = Path(__file__).parents[2] / "runs" / "phosphorylation" / "config.toml"
D, K_P, K_KIN, A_TOT = 10.0, 10.0, 50.0, 1.0  # µm²/s, 1/s, 1/s, µM: the run file's


def exact_profile(R: float) -> tuple[float, float]:
    """(B, λ) of A(r) = B sinh(λr)/r."""
    lam, kappa = math.sqrt(K_P / D), K_KIN * R / 3
    s, c = math.sinh(lam * R), math.cosh(lam * R)
    return kappa * A_TOT / (D * (lam * R * c - s) / R**2 + kappa * s / R), lam


def exact_mean(R: float) -> float:
    B, lam = exact_profile(R)
    s, c = math.sinh(lam * R), math.cosh(lam * R)
    return 3 * B * (R * c / lam - s / lam**2) / R**3


@pytest.mark.parametrize("R", [1.0, 3.0])
def test_closed_form_balances_production_and_removal(R):
    """At steady state the membrane flux equals the removal in the volume:
    κ (A_tot − A(R)) · 4πR² = k_p · mean A · (4/3)πR³."""
    B, lam = exact_profile(R)
    boundary = B * math.sinh(lam * R) / R
    produced = K_KIN * R / 3 * (A_TOT - boundary) * 4 * math.pi * R**2
    removed = K_P * exact_mean(R) * 4 / 3 * math.pi * R**3
    assert produced == pytest.approx(removed, rel=1e-12)


def _steady_mean(R: float, size: float) -> tuple[float, int]:
    overrides = [
        f"mesh.radius={R}",
        f"parameters.R={R}",
        f"mesh.size={size}",
        f"mesh.inner_size={size}",
        "time.end=3",
        "time.dt=0.05",
        "output.every=3",
    ]
    with Simulation(load(CASE, overrides), COMM) as sim:
        result = integrate(sim, None)
        assert result.status == "completed", result.reason
        one = fem.Constant(sim.geometry.mesh, 1.0)
        volume = COMM.allreduce(fem.assemble_scalar(fem.form(one * sim.geometry.dx)))
        return result.final["total_A"] / volume, sim.problem.unknowns


@pytest.mark.parametrize("R, sizes", [(1.0, [0.4, 0.2, 0.1]), (3.0, [0.4, 0.2])])
def test_steady_mean_converges_at_second_order(R, sizes):
    exact = exact_mean(R)
    lines = [f"== phosphorylation, R = {R} um: steady mean A, exact {exact:.6f} uM =="]
    errors = []
    for size in sizes:
        mean, unknowns = _steady_mean(R, size)
        errors.append(abs(mean - exact) / exact)
        lines.append(
            f"h {size:5.2f} unknowns {unknowns:6d} mean {mean:.6f} rel. error {errors[-1]:.2e}"
        )
    eocs = [math.log(a / b) / math.log(2) for a, b in itertools.pairwise(errors)]
    lines.append("EOC " + ", ".join(f"{e:.2f}" for e in eocs))
    say("\n".join(lines))
    assert eocs[-1] >= 2.0 - TOLERANCE
    # measured error constants 0.056 (R = 1) and 0.031 (R = 3): a margin of about 2
    assert errors[-1] < 0.1 * sizes[-1] ** 2
