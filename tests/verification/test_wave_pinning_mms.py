"""V4: nonlinear bulk–surface wave-pinning kinetics, manufactured solution on the unit ball.

    Γ:  ∂t a = D_a Δ_Γ a + f(a, b) + S_a
    Ω:  ∂t b = D_b Δb + S_b,          −D_b ∂ν b = f(a, b) − G
    f(a, b) = b (k0 + γ a²/(K² + a²)) − δ a        (Mori et al. 2008 kinetics)

with a = 1 + ½xyz e^{−t}, b = 2 + ½(x² − y²) e^{−t}. Checks the assembly of a
nonlinear exchange flux (and its Jacobian) at second order. See README.md.
"""

from __future__ import annotations

import pytest

from tests.verification.common import COMM, Study, check_mms, document

PARAMETERS = {"k0": 0.067, "gamma": 1.0, "K": 1.0, "delta": 1.0, "Da": 0.1, "Db": 1.0}
A_EXACT = "(1 + 0.5*x*y*z*exp(-t))"
B_EXACT = "(2 + 0.5*(x**2 - y**2)*exp(-t))"


def kinetics(a: str, b: str) -> str:
    return f"({b}*(k0 + gamma*{a}**2/(K**2 + {a}**2)) - delta*{a})"


F_EXACT = kinetics(A_EXACT, B_EXACT)
SIZES = [0.3, 0.15, 0.075]
END = 0.5


def v4_document() -> dict:
    return document(
        "sphere",
        SIZES[0],
        {
            "a": {"compartment": "membrane", "D": PARAMETERS["Da"], "initial": "1 + 0.5*x*y*z"},
            "b": {
                "compartment": "cytosol",
                "D": PARAMETERS["Db"],
                "initial": "2 + 0.5*(x**2 - y**2)",
            },
        },
        {
            # the exchange: f > 0 moves b from the cytosol onto the membrane
            "exchange": {"equation": "b -> a", "rate": kinetics("a", "b")},
            # G = f(a_ex, b_ex) + 2 D_b (b_ex − 2): −D_b ∂ν b = f − G
            "b_boundary_source": {
                "equation": "-> b",
                "on": "membrane",
                "rate": f"{F_EXACT} + 2*Db*({B_EXACT} - 2)",
            },
            # S_b = ∂t b_ex − D_b Δ b_ex, Δ(x² − y²) = 0
            "b_volume_source": {"equation": "-> b", "rate": "-0.5*(x**2 - y**2)*exp(-t)"},
            # S_a = ∂t a_ex + 12 D_a (a_ex − 1) − f(a_ex, b_ex), Δ_Γ xyz = −12 xyz
            "a_source": {
                "equation": "-> a",
                "rate": f"-0.5*x*y*z*exp(-t) + 12*Da*({A_EXACT} - 1) - {F_EXACT}",
            },
        },
        end=END,
        dt=END / 10,
        scheme="bdf2",
        parameters=PARAMETERS,
    )


def test_v4_sources_solve_the_equations():
    check_mms(v4_document(), {"a": A_EXACT, "b": B_EXACT})


@pytest.mark.serial
def test_v4_wave_pinning_mms_converges_at_orders_2_and_1():
    Study(
        f"V4 wave-pinning MMS, ball, D_a = {PARAMETERS['Da']}, D_b = {PARAMETERS['Db']},"
        f" BDF2 dt = h/2, T = {END}",
        v4_document(),
        {"a surface": ("a", A_EXACT, "surface"), "b bulk": ("b", B_EXACT, "bulk")},
        SIZES,
        COMM,
        dt_of_size=lambda h: h / 2,
    ).check()
