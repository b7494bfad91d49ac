"""V0a surface heat equation and V0b bulk heat equation with Neumann condition.

One compartment at a time, exact eigenfunction solutions, P1 mesh convergence.

V0a  ∂t v = D Δ_Γ v on the unit sphere / unit circle (membrane species only):
     v = xyz e^{−12Dt} (sphere: Δ_Γ xyz = −12 xyz), v = xy e^{−4Dt} (circle: Δ_Γ xy = −4 xy).
V0b  ∂t b = D Δb in the unit ball / disk, ∂ν b = 0 (cytosol species only):
     ball b = j0(κr) e^{−Dκ²t}, κ the first positive root of j0' (tan κ = κ);
     disk b = J0(κr) e^{−Dκ²t}, κ the first positive root of J0' = −J1.

See README.md.
"""

from __future__ import annotations

import math

import pytest

from tests.verification.common import COMM, Study, check_mms, document

# -- V0a -------------------------------------------------------------------------------------
V0A = {
    # D = 0.1: decay rate 12D = 1.2, so BDF2 at dt = h/4 adds far less than the space error
    "sphere": {"D": 0.1, "v0": "x*y*z", "rate": 12, "sizes": [0.3, 0.15, 0.075], "end": 0.5},
    "disk": {"D": 0.25, "v0": "x*y", "rate": 4, "sizes": [0.2, 0.1, 0.05, 0.025], "end": 0.5},
}


def v0a_document(shape: str) -> tuple[dict, str]:
    c = V0A[shape]
    doc = document(
        shape,
        c["sizes"][0],
        {"v": {"compartment": "membrane", "D": c["D"], "initial": c["v0"]}},
        end=c["end"],
        dt=c["end"] / 10,
        scheme="bdf2",
    )
    return doc, f"{c['v0']}*exp(-{c['rate'] * c['D']}*t)"


@pytest.mark.parametrize("shape", ["sphere", "disk"])
def test_v0a_exact_solution_solves_the_surface_heat_equation(shape):
    doc, exact = v0a_document(shape)
    check_mms(doc, {"v": exact})


@pytest.mark.serial
@pytest.mark.parametrize("shape", ["sphere", "disk"])
def test_v0a_surface_heat_converges_at_orders_2_and_1(shape):
    doc, exact = v0a_document(shape)
    Study(
        f"V0a surface heat, {shape}, D = {V0A[shape]['D']}, BDF2 dt = h/4, T = {V0A[shape]['end']}",
        doc,
        {"v surface": ("v", exact, "surface")},
        V0A[shape]["sizes"],
        COMM,
        dt_of_size=lambda h: h / 4,
    ).check()


# -- V0b -------------------------------------------------------------------------------------
KAPPA_BALL = 4.493409457909064  # first positive root of tan κ = κ, i.e. of j0'
KAPPA_DISK = 3.8317059702075125  # first positive root of J1 = −J0'


def j0_text(kappa: float) -> str:
    """j0(κr) = sin(κr)/(κr); the 1e-30 keeps r = 0 finite (j0(0) = 1 to rounding)."""
    r = "sqrt(x**2 + y**2 + z**2 + 1e-30)"
    return f"sin({kappa!r}*{r})/({kappa!r}*{r})"


def bessel_j0_text(kappa: float, terms: int = 20) -> str:
    """J0(κr) = Σ_m (−κ²r²/4)^m/(m!)², as a polynomial in s = x² + y² (no Bessel function
    in the expression language). 20 terms: the remainder is < 1e-22 for κr ≤ 3.84."""
    s = "(x**2 + y**2)"
    # Horner form: 1 + q s (1 + q s/(2²) (1 + ...)), q = −κ²/4, term ratio q s / m²
    q = -kappa * kappa / 4
    text = "1"
    for m in range(terms, 0, -1):
        text = f"(1 + ({q!r}/{m * m})*{s}*{text})"
    return text


V0B = {
    # D chosen so that Dκ² ≈ 1: the solution decays by e^{-T} over the run
    "sphere": {
        "D": 1 / KAPPA_BALL**2,
        "b0": j0_text(KAPPA_BALL),
        "sizes": [0.3, 0.15, 0.075],
        "end": 0.5,
    },
    "disk": {
        "D": 1 / KAPPA_DISK**2,
        "b0": bessel_j0_text(KAPPA_DISK),
        "sizes": [0.2, 0.1, 0.05, 0.025],
        "end": 0.5,
    },
}


def v0b_document(shape: str) -> tuple[dict, str]:
    c = V0B[shape]
    doc = document(
        shape,
        c["sizes"][0],
        {"b": {"compartment": "cytosol", "D": c["D"], "initial": c["b0"]}},
        end=c["end"],
        dt=c["end"] / 10,
        scheme="bdf2",
    )
    return doc, f"({c['b0']})*exp(-t)"  # D κ² = 1


def test_bessel_series_matches_the_integral_representation():
    """J0(s) = (1/π)∫_0^π cos(s sin θ) dθ (trapezoid rule: exact to rounding for this
    periodic integrand), and J0'(κ) = −J1(κ) = 0 at κ = KAPPA_DISK."""
    import numpy as np

    from solver.model.expressions import parse_expression

    expr = parse_expression(bessel_j0_text(KAPPA_DISK))
    theta = np.linspace(0.0, math.pi, 401)
    for r in (0.0, 0.3, 0.77, 1.0):
        series = expr.evaluate({"x": r, "y": 0.0})
        integral = np.trapezoid(np.cos(KAPPA_DISK * r * np.sin(theta)), theta) / math.pi
        assert series == pytest.approx(integral, abs=1e-13)
    j1 = np.trapezoid(np.cos(theta - KAPPA_DISK * np.sin(theta)), theta) / math.pi
    assert abs(j1) < 1e-13


@pytest.mark.parametrize("shape", ["sphere", "disk"])
def test_v0b_exact_solution_solves_the_neumann_heat_equation(shape):
    doc, exact = v0b_document(shape)
    check_mms(doc, {"b": exact})


@pytest.mark.serial
@pytest.mark.parametrize("shape", ["sphere", "disk"])
def test_v0b_bulk_neumann_heat_converges_at_orders_2_and_1(shape):
    doc, exact = v0b_document(shape)
    c = V0B[shape]
    Study(
        f"V0b bulk Neumann heat, {shape}, D = 1/κ², BDF2 dt = h/4, T = {c['end']}",
        doc,
        {"b bulk": ("b", exact, "bulk")},
        c["sizes"],
        COMM,
        dt_of_size=lambda h: h / 4,
    ).check()
