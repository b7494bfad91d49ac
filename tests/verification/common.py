"""Shared tools of the verification suite: run a case, measure errors, compute EOCs.

Exact solutions are written as strings of the run-file expression language (in
x, y, z, t and parameters), so one text serves three purposes: the initial value
of the run file, the UFL expression of the error integrals, and the numpy
function of the finite-difference check of the manufactured source terms.

Everything that touches a mesh is collective: call it on every rank of ``comm``.
See README.md in this folder for the mathematics of each case.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

try:  # must precede any dolfinx/petsc4py import (wheel-installed dolfinx)
    import dolfinx_solver  # noqa: F401
except ImportError:
    pass

from mpi4py import MPI

import numpy as np
import ufl
from dolfinx import fem

from solver.config.runfile import from_dict
from solver.model.expressions import parse_expression
from solver.model.model import CYTOSOL, MEMBRANE
from solver.simulation import Simulation
from solver.time.loop import integrate

#: the communicator of every case (no pytest fixture: the suite also runs with --noconftest)
COMM: MPI.Comm = MPI.COMM_WORLD
#: quadrature degree of every error integral (≥ 2k + 2 = 4 for P1)
ERROR_QUADRATURE = 6
#: the pass rule of docs/numerics.md (Pass rule): last EOC ≥ expected − TOLERANCE
TOLERANCE = 0.15
#: expected orders of P1 on affine meshes (docs/numerics.md, Verification)
P1_ORDERS = {"L2": 2.0, "H1": 1.0}

#: an exact solution: an expression text, or (x, t) -> UFL expression (x a UFL vector)
Exact = str | Callable[[Any, float], Any]


# -- run files -------------------------------------------------------------------------------
def document(
    shape: str,
    size: float,
    species: Mapping[str, Mapping[str, Any]],
    reactions: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    end: float,
    dt: float,
    scheme: str = "bdf2",
    parameters: Mapping[str, float] | None = None,
    petsc: Mapping[str, Any] | None = None,
    linear: str = "iterative",
) -> dict[str, Any]:
    """A run-file document (solver units) on the unit disk or unit ball.

    ``output.every = end``: the clock shortens steps to land on output times, so a
    finer output interval would change the time steps of a convergence study.
    """
    doc: dict[str, Any] = {
        "mesh": {"shape": shape, "radius": 1.0, "size": size},
        "time": {"end": end, "dt": dt, "scheme": scheme},
        "output": {"every": end},
        "species": copy.deepcopy(dict(species)),
        "reactions": copy.deepcopy(dict(reactions or {})),
        "solver": {"linear": linear},
    }
    if parameters:
        doc["parameters"] = dict(parameters)
    if petsc:
        doc["solver"]["petsc"] = dict(petsc)
    return doc


def run_case(doc: Mapping[str, Any], comm: MPI.Comm = COMM) -> Simulation:
    """Validate ``doc``, build the simulation and integrate it to ``time.end`` (no files)."""
    cfg = from_dict(doc, source="<verification>", base_dir=".")
    sim = Simulation(cfg, comm)
    result = integrate(sim, None)
    if result.status != "completed":
        raise RuntimeError(f"run failed: {result.reason}")
    return sim


def restart_and_step(sim: Simulation, dt: float, end: float) -> None:
    """Reset ``sim`` to its initial values and take ``end/dt`` steps of exactly ``dt``."""
    sim.set_initial()
    n = round(end / dt)
    assert math.isclose(n * dt, end, rel_tol=1e-12), (end, dt)
    for k in range(n):
        info = sim.step(dt)
        if not info.converged:
            raise RuntimeError(f"Newton failed at step {k} (dt = {dt:g}): {info.reason}")


# -- exact solutions -------------------------------------------------------------------------
def exact_ufl(exact: Exact, x: Any, t: float, parameters: Mapping[str, float] | None = None) -> Any:
    """``exact`` at the points ``x`` (a UFL vector of 2 or 3 components) and time ``t``."""
    if callable(exact):
        return exact(x, t)
    symbols: dict[str, Any] = {"x": x[0], "y": x[1], "z": x[2] if ufl.shape(x)[0] > 2 else 0.0}
    symbols["t"] = float(t)
    symbols.update({k: float(v) for k, v in (parameters or {}).items()})
    return parse_expression(exact).to_ufl(symbols)


def _global(form: Any, comm: MPI.Comm) -> float:
    return comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)


def errors(sim: Simulation, name: str, exact: Exact, where: str) -> dict[str, float]:
    """Global errors of species ``name`` at ``sim.t`` against ``exact``.

    ``where="bulk"``: ``{"L2": ‖e‖_L2(Ω_h), "H1": ‖∇e‖_L2(Ω_h)}``, the exact solution
    evaluated at the points x of Ω_h.

    ``where="surface"``: ``{"L2": ‖e‖_L2(Γ_h), "H1": ‖∇_Γ e‖_L2(Γ_h)}`` on the membrane
    submesh, the exact surface solution evaluated at the closest-point lift
    p(x) = R x/|x| and its gradient projected with the discrete normal n:
    ∇_Γ e = ∇ v_h − (I − n⊗n) ∇(v∘p)   (∇ of a submesh function is already tangential).
    """
    uh = sim.species_function(name)
    params = sim.config.model.parameters
    t = float(sim.t)
    metadata = {"quadrature_degree": ERROR_QUADRATURE}
    if where == "bulk":
        mesh = sim.geometry.mesh
        ue = exact_ufl(exact, ufl.SpatialCoordinate(mesh), t, params)
        grad_e = ufl.grad(uh) - ufl.grad(ue)
    elif where == "surface":
        mesh = sim.geometry.membrane
        x = ufl.SpatialCoordinate(mesh)
        radius = float(sim.config.mesh.get("radius", 1.0))
        ue = exact_ufl(exact, radius * x / ufl.sqrt(ufl.dot(x, x)), t, params)
        n = ufl.CellNormal(mesh)
        P = ufl.Identity(mesh.geometry.dim) - ufl.outer(n, n)
        grad_e = ufl.grad(uh) - ufl.dot(P, ufl.grad(ue))
    else:
        raise ValueError(f"where must be 'bulk' or 'surface', got {where!r}")
    dx = ufl.Measure("dx", domain=mesh, metadata=metadata)
    e = uh - ue
    l2 = _global(e * e * dx, sim.comm)
    h1 = _global(ufl.inner(grad_e, grad_e) * dx, sim.comm)
    return {"L2": math.sqrt(max(l2, 0.0)), "H1": math.sqrt(max(h1, 0.0))}


def norm_difference(a: fem.Function, b: fem.Function) -> float:
    """‖a − b‖_L2 of two functions on the same mesh (global)."""
    mesh = a.function_space.mesh
    dx = ufl.Measure("dx", domain=mesh, metadata={"quadrature_degree": ERROR_QUADRATURE})
    return math.sqrt(max(_global((a - b) ** 2 * dx, mesh.comm), 0.0))


def eoc(errs: Sequence[float], sizes: Sequence[float]) -> list[float]:
    """EOC_i = ln(e_{i−1}/e_i) / ln(h_{i−1}/h_i), i = 1..n−1 (h: nominal mesh sizes, or Δt)."""
    return [
        math.log(errs[i - 1] / errs[i]) / math.log(sizes[i - 1] / sizes[i])
        for i in range(1, len(errs))
    ]


def say(text: str) -> None:
    """Print on rank 0 only (pytest -s, or the captured output of a failing test)."""
    if MPI.COMM_WORLD.rank == 0:
        print("\n" + text, flush=True)


# -- mesh-convergence studies ----------------------------------------------------------------
class Study:
    """A mesh-convergence study: runs ``doc`` at each size, tabulates errors and EOCs.

    ``fields`` maps a label (e.g. ``"u bulk"``) to ``(species, exact, "bulk"|"surface")``;
    ``dt_of_size(h)`` sets ``time.dt`` per mesh.
    """

    def __init__(
        self,
        title: str,
        doc: Mapping[str, Any],
        fields: Mapping[str, tuple[str, Exact, str]],
        sizes: Sequence[float],
        comm: MPI.Comm = COMM,
        dt_of_size: Callable[[float], float] | None = None,
    ) -> None:
        self.title = title
        self.sizes = list(sizes)
        self.fields = dict(fields)
        self.table = {label: {"L2": [], "H1": []} for label in self.fields}
        self.walls: list[float] = []
        self.vertices: list[int] = []
        self.dts: list[float] = []
        for h in self.sizes:
            case = copy.deepcopy(dict(doc))
            case["mesh"]["size"] = h
            if dt_of_size is not None:
                case["time"]["dt"] = dt_of_size(h)
            self.dts.append(min(case["time"]["dt"], case["time"]["end"]))
            t0 = time.perf_counter()
            sim = run_case(case, comm)
            self.walls.append(comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
            self.vertices.append(sim.geometry.mesh.topology.index_map(0).size_global)
            for label, (name, exact, where) in self.fields.items():
                e = errors(sim, name, exact, where)
                for norm in ("L2", "H1"):
                    self.table[label][norm].append(e[norm])
            sim.problem.destroy()
            del sim

    def eocs(self, label: str, norm: str) -> list[float]:
        return eoc(self.table[label][norm], self.sizes)

    def report(self) -> str:
        """The table of errors and EOCs, one block per field."""
        ranks = MPI.COMM_WORLD.size
        lines = [f"== {self.title} ({ranks} rank{'s' if ranks > 1 else ''}) =="]
        for label in self.fields:
            lines.append(f"-- {label}")
            lines.append(
                f"{'h':>7} {'dt':>9} {'vertices':>8} {'wall s':>7} {'L2 error':>11} {'EOC':>5}"
                f" {'H1 error':>11} {'EOC':>5}"
            )
            l2, h1 = self.table[label]["L2"], self.table[label]["H1"]
            r2 = [math.nan, *self.eocs(label, "L2")]
            r1 = [math.nan, *self.eocs(label, "H1")]
            for i, h in enumerate(self.sizes):
                lines.append(
                    f"{h:7.4g} {self.dts[i]:9.3g} {self.vertices[i]:8d} {self.walls[i]:7.2f}"
                    f" {l2[i]:11.4e} {r2[i]:5.2f} {h1[i]:11.4e} {r1[i]:5.2f}"
                )
        return "\n".join(lines)

    def check(self, expected: Mapping[str, float] = P1_ORDERS) -> None:
        """Print the table; assert last EOC ≥ expected − TOLERANCE for every field and norm."""
        text = self.report()
        say(text)
        failed = [
            f"{label} {norm}: last EOC {self.eocs(label, norm)[-1]:.3f} < {order} - {TOLERANCE}"
            for label in self.fields
            for norm, order in expected.items()
            if not self.eocs(label, norm)[-1] >= order - TOLERANCE
        ]
        assert not failed, "\n".join(failed) + "\n" + text


# -- manufactured solutions: finite-difference check of the source terms ---------------------
def _numpy(text: str, parameters: Mapping[str, float]) -> Callable[..., np.ndarray]:
    expr = parse_expression(text)

    def f(x: np.ndarray, t: float, species: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        symbols: dict[str, Any] = {"x": x[0], "y": x[1], "z": x[2], "t": t}
        symbols.update(parameters)
        symbols.update(species or {})
        return np.broadcast_to(np.asarray(expr.evaluate(symbols), dtype=float), x.shape[1:])

    return f


def _laplacian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dim: int, h: float) -> Any:
    total = np.zeros(x.shape[1])
    for i in range(dim):
        step = np.zeros((3, 1))
        step[i] = h
        total += (f(x + step) - 2 * f(x) + f(x - step)) / h**2
    return total


def mms_residuals(
    doc: Mapping[str, Any], exact: Mapping[str, str], n: int = 200, seed: int = 1
) -> dict[str, float]:
    """Residuals of the run file's equations for the exact solutions, by finite differences.

    The run file ``doc`` is on the unit disk (dim 2) or unit ball (dim 3). With the
    reactions of the model (volume rates R_vol, membrane rates R_mem) it checks,
    at random points and times, the three equations the engine discretises:

    * Ω:  ∂t u − D Δu − Σ_vol ν_u r  = 0                  (interior points)
    * Γ:  D ∂ν u − Σ_mem ν_u r = 0                        (cytosol species, boundary points)
    * Γ:  ∂t v − D Δ_Γ v − Σ_mem ν_v r = 0                (membrane species)

    Δ_Γ v is the ambient Laplacian of the 0-homogeneous extension v(x/|x|) on the unit
    sphere/circle. Returns the largest absolute residual of each equation, scaled
    by the size of its terms.
    """
    cfg = from_dict(doc, source="<mms>", base_dir=".")
    model = cfg.model
    dim = 2 if cfg.mesh["shape"] == "disk" else 3
    params = dict(model.parameters)
    sol = {name: _numpy(text, params) for name, text in exact.items()}
    rates = {name: _numpy(r.rate.text, params) for name, r in model.reactions.items()}
    rng = np.random.default_rng(seed)

    def on_sphere(m: int) -> np.ndarray:
        p = rng.normal(size=(3, m))
        p[dim:] = 0.0
        return p / np.linalg.norm(p, axis=0)

    def in_ball(m: int) -> np.ndarray:
        return on_sphere(m) * rng.uniform(0.05, 0.95, size=m) ** (1.0 / dim)

    def values(x: np.ndarray, t: float) -> dict[str, np.ndarray]:
        return {name: f(x, t) for name, f in sol.items()}

    def production(x: np.ndarray, t: float, name: str, where: str) -> np.ndarray:
        species = values(x, t)
        total = np.zeros(x.shape[1])
        for rname, r in model.reactions.items():
            nu = r.stoichiometry.get(name, 0)
            if nu and r.location == where:
                total += nu * rates[rname](x, t, species)
        return total

    h, ht = 1e-4, 1e-5
    out = {}
    times = rng.uniform(0.1, 0.9, size=3)
    for name, f in sol.items():
        sp = model.species[name]
        worst, worst_flux = 0.0, 0.0
        for t in times:
            dfdt = lambda x, f=f, t=t: (f(x, t + ht) - f(x, t - ht)) / (2 * ht)  # noqa: E731
            if sp.compartment == CYTOSOL:
                x = in_ball(n)
                terms = [
                    dfdt(x),
                    -sp.D * _laplacian(lambda y, f=f, t=t: f(y, t), x, dim, h),
                    -production(x, t, name, CYTOSOL),
                ]
                res = sum(terms)
                scale = 1.0 + max(np.abs(term).max() for term in terms)
                worst = max(worst, float(np.abs(res).max() / scale))
                x = on_sphere(n)
                dn = (f(x * (1 + h), t) - f(x * (1 - h), t)) / (2 * h)  # ν = x on |x| = 1
                terms = [sp.D * dn, -production(x, t, name, MEMBRANE)]
                scale = 1.0 + max(np.abs(term).max() for term in terms)
                worst_flux = max(worst_flux, float(np.abs(sum(terms)).max() / scale))
            else:
                x = on_sphere(n)

                def lifted(y: np.ndarray, f=f, t=t) -> np.ndarray:
                    return f(y / np.linalg.norm(y[:dim], axis=0), t)

                terms = [
                    dfdt(x),
                    -sp.D * _laplacian(lifted, x, dim, h),
                    -production(x, t, name, MEMBRANE),
                ]
                scale = 1.0 + max(np.abs(term).max() for term in terms)
                worst = max(worst, float(np.abs(sum(terms)).max() / scale))
        if sp.compartment == CYTOSOL:
            out[f"{name} in Ω"] = worst
            out[f"{name} flux on Γ"] = worst_flux
        else:
            out[f"{name} on Γ"] = worst
    return out


def check_mms(doc: Mapping[str, Any], exact: Mapping[str, str], tol: float = 1e-5) -> None:
    """Assert that ``exact`` solves the run file's equations (see :func:`mms_residuals`)."""
    res = mms_residuals(doc, exact)
    assert all(v < tol for v in res.values()), f"manufactured-solution residuals: {res}"


# -- small helpers ---------------------------------------------------------------------------
def relative_pool_change(before: Mapping[str, float], after: Mapping[str, float]) -> dict:
    """|after − before| / |before| of every ``pool_*`` total."""
    return {k: abs(after[k] - v) / abs(v) for k, v in before.items() if k.startswith("pool_")}
