"""Time the polarity engine on the exchange benchmark at one mesh size.

The problem is ``runs/exchange_3d/config.toml`` (unit ball, cytosol c with
D = 1, membrane m with D = 0.1, nonlinear exchange flux, backward Euler,
dt = 0.01 s) with the mesh size, the number of steps and the linear-solver
family replaced. It runs through the public engine API only
(``solver.config_from_dict`` + ``solver.Simulation``, the public API), writes no
field output, and prints (rank 0) one JSON record::

    mpiexec -n 2 python benchmarks/engine.py --size 0.041 --steps 100 --json out.json

Times are wall seconds. Set-up is split into mesh (gmsh + distribution),
forms (UFL → FFCx JIT, instant on a warm FFCx cache), problem (matrices,
PETSc objects) and the rest (initial values, mass lumping). The first step is
reported apart (it pays for first-touch allocations and the first
preconditioner/factorisation set-up); the per-step figures are over steps
2..N. The engine's own timers (``Problem.timers``) split those steps into
assembly (residual + Jacobian at each Newton iteration, linear matrix and
history once per step) and the rest of the SNES solve (≈ the linear solves).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # a dolfinx installed another way
    pass

from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

import dolfinx  # noqa: E402
import numpy as np  # noqa: E402
from timing import (  # noqa: E402
    code_digest,
    krylov_rtol,
    peak_rss_mib,
    report,
    run_main,
    time_loop,
)

import solver  # noqa: E402
import solver.simulation as simulation  # noqa: E402  (its parts are timed apart)


def source_hash() -> str:
    """SHA-256 (12 hex digits) of the engine's code (comments, docstrings excluded)."""
    digest = hashlib.sha256()
    package = Path(simulation.__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0")
        digest.update(code_digest(path.read_bytes()))
    return digest.hexdigest()[:12]


SOURCE_HASH = source_hash()  # at import time, as close as possible to what was imported

RUN_FILE = ROOT / "runs" / "exchange_3d" / "config.toml"
DT = 0.01  # s
#: the benchmark's problem; the run file is checked against it so the engine and
#: the hand-written baseline cannot silently solve different problems
EXPECTED = {
    "k_on": 1.0,
    "k_off": 0.5,
    "a": 5.0,
    "K": 0.5,
    "D_c": 1.0,
    "D_m": 0.1,
}


def problem_document(
    size: float, steps: int, linear: str, petsc: dict[str, str] | None = None
) -> dict:
    """The benchmark run file as a TOML document, with size, steps and solver set."""
    with RUN_FILE.open("rb") as f:
        doc = tomllib.load(f)
    doc["mesh"]["size"] = float(size)
    doc["time"].update(end=steps * DT, dt=DT, scheme="euler")
    doc.pop("output", None)
    # the consistent mass matrix, as in the hand-written reference (baseline_dolfinx.py)
    doc["solver"] = {"linear": linear, "petsc": dict(petsc or {}), "mass": "consistent"}
    return doc


def check_problem(cfg) -> None:
    """Fail loudly if the run file no longer holds the benchmark's problem."""
    model = cfg.model
    found = {
        **{k: model.parameters[k] for k in ("k_on", "k_off", "a", "K")},
        "D_c": model.species["c"].D,
        "D_m": model.species["m"].D,
    }
    bad = {k: v for k, v in found.items() if not np.isclose(v, EXPECTED[k], rtol=1e-14)}
    if bad or cfg.mesh.get("radius", 1.0) != 1.0 or cfg.mesh["shape"] != "sphere":
        raise SystemExit(f"{RUN_FILE}: not the benchmark problem any more: {bad or cfg.mesh}")


class _Timed:
    """Wrap ``owner.name`` so that its wall time is recorded in ``record[key]``."""

    def __init__(self, owner, name: str, record: dict, key: str) -> None:
        self.owner, self.name, self.record, self.key = owner, name, record, key
        self.original = getattr(owner, name)

    def __enter__(self):
        original, record, key = self.original, self.record, self.key

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                record[key] = record.get(key, 0.0) + time.perf_counter() - t0

        setattr(self.owner, self.name, timed)
        return self

    def __exit__(self, *exc) -> None:
        setattr(self.owner, self.name, self.original)


def run(
    size: float,
    steps: int,
    linear: str,
    comm: MPI.Comm = MPI.COMM_WORLD,
    petsc: dict[str, str] | None = None,
) -> dict:
    if steps < 2:
        raise SystemExit("--steps must be at least 2 (the first step is timed apart)")
    start = time.perf_counter()
    doc = problem_document(size, steps, linear, petsc)
    cfg = solver.config_from_dict(doc, str(RUN_FILE), RUN_FILE.parent)
    check_problem(cfg)

    setup: dict[str, float] = {}
    comm.Barrier()
    t0 = time.perf_counter()
    with (
        _Timed(simulation.meshing, "mesh_from_config", setup, "mesh"),
        _Timed(simulation.system_forms, "build", setup, "forms"),
        _Timed(simulation, "Problem", setup, "problem"),
    ):
        sim = solver.Simulation(cfg, comm)
    comm.Barrier()
    setup["total"] = time.perf_counter() - t0
    setup["other"] = setup["total"] - setup["mesh"] - setup["forms"] - setup["problem"]
    problem = sim.problem
    unknowns = problem.unknowns
    blocks = {
        b.name: b.space.dofmap.index_map.size_global * b.space.dofmap.index_map_bs
        for b in sim.blocks
    }
    initial = sim.totals()

    by_step = []  # (total c, total m) after each step: to check the baseline at its step count
    timers_after_first: dict[str, float] = {}

    def one_step() -> tuple[int, int, str, bool]:
        info = sim.step(DT)
        return info.newton_iterations, info.linear_iterations, info.reason, info.converged

    def record_totals() -> None:
        totals = sim.totals()
        by_step.append((totals["total_c"], totals["total_m"]))

    stats, rest = time_loop(
        one_step,
        steps,
        comm,
        on_first=lambda: timers_after_first.update(problem.timers),
        after=record_totals,
    )
    final = sim.totals()

    # engine timers over steps 2..N, max over ranks (the slowest rank sets the pace)
    timers = {
        k: comm.allreduce(problem.timers[k] - timers_after_first.get(k, 0.0), op=MPI.MAX)
        for k in problem.timers
    }
    assembly = timers["residual"] + timers["jacobian"] + timers["linear_matrix"]
    solve_rest = timers["snes"] - timers["residual"] - timers["jacobian"]
    peak_sum, peak_max = peak_rss_mib(comm)
    pool = "pool_c+m"
    record = {
        "code": "engine",
        "versions": {"dolfinx": dolfinx.__version__, "petsc": PETSc.Sys.getVersion()},
        "engine_source_sha256": SOURCE_HASH,
        "linear": linear,
        "petsc_options": {k: v for k, v in problem.options.items()},
        "krylov_rtol": krylov_rtol(problem),
        "mesh_size": size,
        "ranks": comm.size,
        "unknowns": unknowns,
        "dofs": blocks,
        "dt": DT,
        "steps": steps,
        "setup_s": setup,
        **stats,
        # seconds over steps 2..N
        "timers_s": {
            "residual_assembly": timers["residual"],
            "jacobian_assembly": timers["jacobian"],
            "linear_assembly": timers["linear_matrix"],
            "assembly": assembly,
            "snes": timers["snes"],
            "snes_minus_assembly": solve_rest,
            "steps_wall": rest,
        },
        # GMRES/Jacobi iterations that estimated Newton's second update (not in krylov_*)
        "estimate_iterations": getattr(getattr(problem, "estimate", None), "iterations", 0),
        "assembly_share": assembly / rest if rest > 0 else float("nan"),
        "solve_share": solve_rest / rest if rest > 0 else float("nan"),
        "peak_rss_mib": peak_sum,
        "peak_rss_mib_max_rank": peak_max,
        "totals_initial": initial,
        "totals_final": final,
        "conservation_drift": abs(final[pool] - initial[pool]) / abs(initial[pool]),
        "totals_by_step": {
            "total_c": [c for c, _ in by_step],
            "total_m": [m for _, m in by_step],
        },
        "wall_s": time.perf_counter() - start,
    }
    problem.destroy()
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=float, required=True, help="gmsh mesh size (µm)")
    p.add_argument("--steps", type=int, default=100, help="time steps of dt = 0.01 s")
    p.add_argument("--linear", choices=("iterative", "direct"), default="iterative")
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    p.add_argument(
        "--petsc",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra PETSc option of the engine's solver (as [solver.petsc] in a "
        "run file), e.g. --petsc snes_lag_preconditioner=2; repeatable",
    )
    args = p.parse_args(argv)
    petsc = {}
    for item in args.petsc:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--petsc expects KEY=VALUE, got {item!r}")
        petsc[key.strip().lstrip("-")] = value.strip()
    comm = MPI.COMM_WORLD
    record = run(args.size, args.steps, args.linear, comm, petsc)
    return report(record, args.json, comm)


if __name__ == "__main__":
    run_main(main)
