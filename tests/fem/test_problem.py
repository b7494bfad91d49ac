"""The engine's cost savings that must not change results: the quadrature of polynomial
rates, and the preconditioner kept for a Jacobian that does not change."""

from __future__ import annotations

from pathlib import Path

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx.fem.petsc as fem_petsc
import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh

from solver.config.runfile import load
from solver.fem.forms import reaction_degree
from solver.fem.problem import Problem
from solver.simulation import Simulation
from tests.cases import exchange_disk

COMM = MPI.COMM_WORLD
PHOSPHORYLATION = Path(__file__).parents[2] / "runs" / "phosphorylation" / "config.toml"


@pytest.fixture(scope="module")
def symbols():
    domain = mesh.create_unit_square(COMM, 2, 2)
    space = fem.functionspace(domain, ("Lagrange", 1, (2,)))
    u, k = fem.Function(space), fem.Constant(domain, 2.0)
    x = ufl.SpatialCoordinate(domain)
    return u[0], u[1], k, x, ufl.TestFunction(space)[0]


@pytest.mark.parametrize(
    "rate, degree",
    [
        (lambda c, m, k, x: k * c, 2),  # linear: P1 × P1 test
        (lambda c, m, k, x: k * c * m - 0.5 * m, 3),
        (lambda c, m, k, x: c**2 * x[0], 4),
        (lambda c, m, k, x: c**3 * m**2, 4),  # degree 6: capped by the configured 4
        (lambda c, m, k, x: c / (k + c), 4),  # rational: not a polynomial
        (lambda c, m, k, x: ufl.exp(-c), 4),
        (lambda c, m, k, x: ufl.max_value(c, 0.0), 4),
        (lambda c, m, k, x: c**0.5, 4),
        (lambda c, m, k, x: c ** (-1), 4),
        (lambda c, m, k, x: 3.0, 1),  # a constant source
    ],
)
def test_reaction_quadrature_degree(symbols, rate, degree):
    c, m, k, x, v = symbols
    assert reaction_degree(rate(c, m, k, x), v, 4) == degree
    assert reaction_degree(rate(c, m, k, x), v, 4, affine=False) == 4  # curved cells


def _run(steps: list[float], reuse: bool, monkeypatch) -> tuple[np.ndarray, list[int], int]:
    """States after ``steps`` (dt in s) of the phosphorylation case (linear), and the
    Newton iterations and Jacobian assemblies; ``reuse=False`` rebuilds J every time."""
    builds = []
    original = Problem._assemble_matrix

    def counted(self, A, forms):
        if forms is self.forms.jacobian:
            builds.append(1)
        return original(self, A, forms)

    monkeypatch.setattr(Problem, "_assemble_matrix", counted)
    cfg = load(PHOSPHORYLATION, ["mesh.size=0.3", "mesh.inner_size=0.3"])
    with Simulation(cfg, COMM) as sim:
        builds.clear()  # the set-up assembles every form once, to fix the matrix patterns
        sim.problem._constant_jacobian = sim.problem._constant_jacobian and reuse
        newton = [sim.step(dt).newton_iterations for dt in steps]
        state = sim.blocks[0].u.x.array.copy()
    monkeypatch.undo()
    return state, newton, len(builds)


def test_a_constant_jacobian_is_assembled_once_per_step_size(monkeypatch):
    steps = [0.01] * 4 + [0.02] * 3
    kept, newton, builds = _run(steps, True, monkeypatch)
    rebuilt, newton_rebuilt, builds_rebuilt = _run(steps, False, monkeypatch)
    assert builds == 2  # dt = 0.01, then dt = 0.02 (c0 changed)
    assert builds_rebuilt == sum(newton_rebuilt) >= len(steps)
    assert newton == newton_rebuilt  # the same Jacobian, so the same Newton path
    assert np.allclose(kept, rebuilt, rtol=1e-12, atol=1e-14)


@pytest.mark.serial  # the message is printed on rank 0
def test_a_solver_type_petsc_lacks_is_one_line_and_nothing_is_written(tmp_path, capsys):
    from solver import cli

    config = tmp_path / "config.toml"
    config.write_text(exchange_disk())
    out = tmp_path / "out"
    argv = ["run", str(config), "-o", str(out), "--set", "solver.petsc.ksp_type=nonsense"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {config}: solver.petsc: "), err
    assert "KSP type nonsense" in err[0]
    assert not out.exists()


CHEMOTAXIS_2D = Path(__file__).parents[2] / "runs" / "chemotaxis_2d" / "config.toml"


def _full_jacobian(problem: Problem, c0: float) -> PETSc.Mat:
    """The Jacobian in dolfinx's own pattern (full species blocks), assembled from scratch."""
    forms = problem.forms
    n = len(forms.blocks)
    layers = (forms.stiffness, forms.fixed, forms.jacobian)
    layout = [
        [next((f[i][j] for f in layers if f[i][j] is not None), None) for j in range(n)]
        for i in range(n)
    ]
    J = fem_petsc.create_matrix(layout, kind="mpi")
    J.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, False)
    for layer in layers:
        problem._assemble_matrix(J, layer)
    J.assemble()
    if problem.m is not None:
        mass = problem.m.copy()
        mass.scale(c0)
        J.setDiagonal(mass, addv=PETSc.InsertMode.ADD)
    else:
        J.axpy(c0, problem.M, PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
    return J


@pytest.mark.parametrize("case", ["chemotaxis_2d", "six compartments", "consistent mass"])
def test_the_sparse_pattern_holds_every_entry_of_the_jacobian(case):
    """The matrix keeps only the species pairs the forms couple: J·v is the full J·v.

    The 11-species model (72 % of dolfinx's full species blocks are zeros), and six
    compartments with two-sided interface integrals (the pattern trap of dolfinx 0.11).
    """
    import tomllib

    from solver.config.runfile import from_dict
    from tests.verification.test_compartments import CELL_IN_MEDIUM

    if case == "six compartments":
        cfg = from_dict(tomllib.loads(CELL_IN_MEDIUM.format(size=0.3)), source="<V6>")
    else:
        mass = "consistent" if case == "consistent mass" else "lumped"
        cfg = load(CHEMOTAXIS_2D, ["mesh.size=1.0", f"solver.mass={mass}"])
    with Simulation(cfg, COMM) as sim:
        for _ in range(3):
            assert sim.step(0.5).converged
        p = sim.problem
        if p.lag is not None:
            p.lag.reset()  # the Jacobian at the current state, not a chord step's
        p._jacobian(None, p.x, p.A, p.A)
        full = _full_jacobian(p, p._c0)
        assert p.A.getInfo()["nz_used"] < full.getInfo()["nz_used"]
        v, sparse_v, full_v = p.x.duplicate(), p.x.duplicate(), p.x.duplicate()
        rng = np.random.default_rng(COMM.rank)
        with v.localForm() as local:
            local.array_w[:] = rng.uniform(0.5, 1.5, local.array_r.size)
        p.A.mult(v, sparse_v)
        full.mult(v, full_v)
        full_v.axpy(-1.0, sparse_v)
        assert full_v.norm() <= 1e-13 * sparse_v.norm()
        for obj in (full, v, sparse_v, full_v):
            obj.destroy()
