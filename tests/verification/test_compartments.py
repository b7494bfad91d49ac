"""V6: several compartments — nested disks coupled across the inner surface, P1 orders.

Ω₁ = {r < ½} (``nucleus``), Ω₂ = {½ < r < 1} (``cytosol``), Γ₁ = {r = ½} (``envelope``,
inside Ω₁, outside Ω₂), Γ₂ = {r = 1} (``membrane``, inside Ω₂). Steady problems, solved
as one backward-Euler step of dt = 1e8 from zero (as V1):

* **A, direct transport** across Γ₁, integrated over its facets seen from both sides:
  −Δu₁ + u₁ = f₁ in Ω₁, −Δu₂ + u₂ = f₂ in Ω₂, j = k(u₁ − u₂) leaves Ω₁ and enters Ω₂.
* **B, a chain volume → surface → volume**: u₁ → v on Γ₁ (j₁ = a u₁ − b v), v → u₂
  (j₂ = c v − d u₂), −Δ_Γ v + v = j₁ − j₂ + f_v on Γ₁.

The engine's boundary conditions are D ∂ν u = Σ ν r over the surface reactions of each
side (ν the outward normal of that volume); the manufactured sources ``s₁``, ``s₂``,
``s₃`` are the boundary sources that make the exact pair satisfy them (derived in
README.md, V6). Exact: u₁ = xy, u₂ = 2xy (A) or 3xy (B), v = 2xy on Γ₁ (lifted by the
closest point, as the surface errors of V1). Pass rule: last EOC ≥ expected − 0.15.
"""

from __future__ import annotations

import math

import pytest
import ufl
from dolfinx import fem

from solver import config_from_dict
from solver.simulation import Simulation
from solver.time.loop import integrate
from tests.verification.common import COMM, ERROR_QUADRATURE, TOLERANCE, eoc, exact_ufl, say

HUGE = 1e8
R_INNER = 0.5
SIZES = [0.1, 0.05, 0.025]

COMPARTMENTS = {
    "nucleus": {"kind": "volume"},
    "cytosol": {"kind": "volume"},
    "envelope": {"kind": "surface", "inside": "nucleus", "outside": "cytosol"},
    "membrane": {"kind": "surface", "inside": "cytosol"},
}


def _volume(name: str, compartment: str, source: str) -> tuple[dict, dict]:
    species = {name: {"compartment": compartment, "D": 1.0, "initial": 0.0}}
    reactions = {
        f"{name}_decay": {"equation": f"{name} ->", "rate": name},
        f"{name}_source": {"equation": f"-> {name}", "rate": source},
    }
    return species, reactions


def _boundary(name: str, on: str, rate: str) -> dict:
    return {"equation": f"-> {name}", "rate": rate, "on": on}


def case_a() -> tuple[dict, dict, dict]:
    """Direct transport k(u₁ − u₂) across Γ₁; k = 1."""
    s1, r1 = _volume("u1", "nucleus", "x*y")
    s2, r2 = _volume("u2", "cytosol", "2*x*y")
    reactions = {
        **r1,
        **r2,
        "transport": {"equation": "u1 -> u2", "rate": "k*(u1 - u2)"},
        # D ∂ν u₁ = 2xy/R = 4xy = −j + s₁, j = −xy;  D ∂ν u₂ = −8xy = j + s₂;  ∂ν u₂ = 4xy on Γ₂
        "s1": _boundary("u1", "envelope", "3*x*y"),
        "s2": _boundary("u2", "envelope", "-7*x*y"),
        "s3": _boundary("u2", "membrane", "4*x*y"),
    }
    exact = {"u1": ("x*y", "nucleus"), "u2": ("2*x*y", "cytosol")}
    return {**s1, **s2}, reactions, exact


def case_b() -> tuple[dict, dict, dict]:
    """The chain u₁ → v → u₂ through the envelope; a = c = 1, b = d = 1/4."""
    s1, r1 = _volume("u1", "nucleus", "x*y")
    s2, r2 = _volume("u2", "cytosol", "3*x*y")
    sv, rv = _volume("v", "envelope", "34.75*x*y")
    reactions = {
        **r1,
        **r2,
        **rv,
        "in": {"equation": "u1 -> v", "rate": "a*u1 - b*v"},  # j₁ = xy/2
        "out": {"equation": "v -> u2", "rate": "c*v - d*u2"},  # j₂ = 5xy/4
        # D ∂ν u₁ = 4xy = −j₁ + s₁;  D ∂ν u₂ = −12xy = j₂ + s₂;  ∂ν u₂ = 6xy on Γ₂
        "s1": _boundary("u1", "envelope", "4.5*x*y"),
        "s2": _boundary("u2", "envelope", "-13.25*x*y"),
        "s3": _boundary("u2", "membrane", "6*x*y"),
    }
    exact = {
        "u1": ("x*y", "nucleus"),
        "u2": ("3*x*y", "cytosol"),
        "v": ("2*x*y", "envelope"),
    }
    return {**s1, **s2, **sv}, reactions, exact


CASES = {"A direct transport": case_a, "B chain volume-surface-volume": case_b}


def document(case: str, size: float) -> dict:
    species, reactions, _ = CASES[case]()
    return {
        "mesh": {
            "shape": "disk",
            "radius": 1.0,
            "size": size,
            "inner": {"nucleus": {"shape": "disk", "radius": R_INNER, "surface": "envelope"}},
        },
        "time": {"end": HUGE, "dt": HUGE, "scheme": "euler"},
        "output": {"every": HUGE},
        "compartments": COMPARTMENTS,
        "parameters": {"k": 1.0, "a": 1.0, "b": 0.25, "c": 1.0, "d": 0.25},
        "species": species,
        "reactions": reactions,
    }


def errors(sim: Simulation, name: str, exact: str, surface: bool) -> dict[str, float]:
    """L² and H¹ errors of ``name`` on its compartment's own mesh (the surface: lifted)."""
    uh = sim.species_function(name)
    mesh = uh.function_space.mesh
    x = ufl.SpatialCoordinate(mesh)
    if surface:
        ue = exact_ufl(exact, R_INNER * x / ufl.sqrt(ufl.dot(x, x)), 0.0)
        n = ufl.CellNormal(mesh)
        grad_e = ufl.grad(uh) - ufl.dot(ufl.Identity(2) - ufl.outer(n, n), ufl.grad(ue))
    else:
        ue = exact_ufl(exact, x, 0.0)
        grad_e = ufl.grad(uh) - ufl.grad(ue)
    dx = ufl.Measure("dx", domain=mesh, metadata={"quadrature_degree": ERROR_QUADRATURE})
    total = [
        sim.comm.allreduce(fem.assemble_scalar(fem.form(f * dx)))
        for f in ((uh - ue) ** 2, ufl.inner(grad_e, grad_e))
    ]
    return {"L2": math.sqrt(max(total[0], 0.0)), "H1": math.sqrt(max(total[1], 0.0))}


@pytest.mark.parametrize("case", list(CASES))
def test_nested_disks_converge_at_p1_orders_in_every_compartment(case):
    """Orders L² 2 and H¹ 1 in Ω₁, Ω₂ (and on Γ₁), on any number of ranks."""
    _, _, exact = CASES[case]()
    table: dict[str, dict[str, list[float]]] = {n: {"L2": [], "H1": []} for n in exact}
    for size in SIZES:
        cfg = config_from_dict(document(case, size), source="<V6>")
        with Simulation(cfg, COMM) as sim:
            result = integrate(sim, None)
            assert result.status == "completed", result.reason
            for name, (text, where) in exact.items():
                err = errors(sim, name, text, where == "envelope")
                for norm in ("L2", "H1"):
                    table[name][norm].append(err[norm])
    lines = [f"V6 {case}: h = {SIZES}"]
    for name, norms in table.items():
        for norm, errs in norms.items():
            orders = eoc(errs, SIZES)
            lines.append(
                f"  {name:<3} {norm}: "
                + " ".join(f"{e:.3e}" for e in errs)
                + "  EOC "
                + " ".join(f"{o:.2f}" for o in orders)
            )
    report = "\n".join(lines)
    say(report)
    for norms in table.values():
        for norm, expected in (("L2", 2.0), ("H1", 1.0)):
            assert eoc(norms[norm], SIZES)[-1] >= expected - TOLERANCE, report


# -- conservation and rank-count independence on a cell with a nucleus in a medium ----------
CELL_IN_MEDIUM = """
[mesh]
shape = "disk"
radius = 1.0
size = {size}

[mesh.inner.nucleus]
shape = "disk"
radius = 0.4
center = [0.1, 0.0]
surface = "envelope"

[mesh.outside]
shape = "disk"
radius = 2.0
size = 0.4

[time]
end = 1.0
dt = 0.01
scheme = "bdf2"

[output]
every = 0.5

[solver.petsc]
snes_rtol = "1e-14"
snes_atol = "1e-15"

[compartments.cytosol]
kind = "volume"
[compartments.nucleus]
kind = "volume"
[compartments.medium]
kind = "volume"
[compartments.membrane]
kind = "surface"
inside = "cytosol"
outside = "medium"
[compartments.envelope]
kind = "surface"
inside = "nucleus"
outside = "cytosol"
[compartments.boundary]
kind = "surface"
inside = "medium"

[species.L]
compartment = "medium"
D = 10.0
initial = "1 + x"
[species.R]
compartment = "membrane"
D = 0.01
initial = 1.0
[species.LR]
compartment = "membrane"
D = 0.01
initial = 0.0
[species.C]
compartment = "cytosol"
D = 1.0
initial = "0.5 + 0.2*y"
[species.N]
compartment = "nucleus"
D = 1.0
initial = 0.1
[species.E]
compartment = "envelope"
D = 0.1
initial = 0.0
[species.B]
compartment = "boundary"
D = 0.1
initial = 0.0

[reactions.bind]
equation = "L + R -> LR"
rate = "2*L*R - 0.5*LR"
[reactions.signal]
equation = "LR -> C + R"
rate = "0.3*LR"
[reactions.dock]
equation = "C -> E"
rate = "C - 0.5*E"
[reactions.import]
equation = "E -> N"
rate = "E - 0.5*N"
[reactions.uptake]
equation = "L -> C"
rate = "0.05*L*C"
[reactions.trap]
equation = "L -> B"
rate = "0.1*L - 0.05*B"
"""


def test_pools_are_constant_across_six_compartments():
    """Every conserved pool to 1e-12 relative over 100 steps (BDF2), on any number of ranks.

    The pools span the medium, both surfaces beside it and both volumes of the cell;
    the uptake reads L and C through the membrane from both sides (a two-sided integral).
    """
    import tomllib

    cfg = config_from_dict(tomllib.loads(CELL_IN_MEDIUM.format(size=0.2)), source="<V6>")
    with Simulation(cfg, COMM) as sim:
        assert len(sim.blocks) == 6 and len(sim.pools) >= 2
        before = sim.totals()
        for _ in range(100):
            assert sim.step(0.01).converged
        after = sim.totals()
    for key in before:
        if key.startswith("pool_"):
            change = abs(after[key] - before[key]) / abs(before[key])
            assert change < 1e-12, (key, before[key], after[key])
    assert abs(after["total_N"] - before["total_N"]) > 0.1 * before["total_N"]  # things moved


@pytest.mark.serial
def test_every_field_is_the_same_on_one_and_two_ranks(tmp_path):
    """Domain decomposition changes the fields of all six compartments by round-off only."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from mpi4py import MPI

    from solver.io import checkpoint

    run = tmp_path / "cell.toml"
    run.write_text(CELL_IN_MEDIUM.format(size=0.2))
    mpiexec = Path(sys.executable).parent / "mpiexec"
    stored = {}
    for ranks in (1, 2):
        out = tmp_path / f"out{ranks}"
        cmd = [str(mpiexec), "-n", str(ranks), sys.executable, "-m", "solver", "run", str(run)]
        cmd += ["-o", str(out), "--set", "time.end=0.5"]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        stored[ranks] = checkpoint.read(checkpoint.path_in(out), MPI.COMM_SELF)
    one, two = stored[1].blocks, stored[2].blocks
    assert (
        sorted(one)
        == sorted(two)
        == sorted(["cytosol", "nucleus", "medium", "membrane", "envelope", "boundary"])
    )
    for name, block in one.items():
        other = two[name]
        assert (block.keys == other.keys).all(), name
        a, b = block.states[0], other.states[0]
        scale = max(float(abs(a).max()), 1e-300)
        assert float(abs(a - b).max()) <= 1e-8 * scale, name
