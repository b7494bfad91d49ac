"""The exchange benchmark's time-step error with the engine's default Newton rule.

The engine's Newton stops when its update is 1 % of the error a time step may make
(``[solver] newton = "error"``), no longer at a residual of 1e-10. This script shows
that the solution's error does not change: the same problem as ``engine.py`` (unit
ball, backward Euler, dt = 0.01 s, ``--steps`` steps) is solved

* with the default rule (``error``),
* with the old rule (``residual``: snes_rtol 1e-10),
* and, for reference, with the old rule and ``--refine`` times smaller steps,

and the final fields are compared in the step-size controller's norm (weighted RMS
with atol 1e-4, rtol 1e-3, `docs/numerics.md`) and in the largest relative difference:
``time_error`` (old rule against the reference: the time-step error, up to the
reference's own), ``default_error`` (default rule against the reference) and
``newton_difference`` (default against old rule). Prints (rank 0) one JSON record::

    python benchmarks/exchange_error.py --size 0.041 --steps 20 --json out.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for folder in (HERE.parent, HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # a dolfinx installed another way
    pass

from mpi4py import MPI  # noqa: E402

import numpy as np  # noqa: E402
from engine import DT, RUN_FILE, problem_document  # noqa: E402
from timing import report, run_main  # noqa: E402

import solver  # noqa: E402

ATOL, RTOL = 1e-4, 1e-3


def solve(size: float, steps: int, dt: float, newton: str, comm: MPI.Comm) -> dict:
    """Final owned fields, Newton iterations and wall time of one run."""
    doc = problem_document(size, steps, "iterative")
    doc["time"].update(end=steps * dt, dt=dt)
    doc["solver"]["newton"] = newton
    cfg = solver.config_from_dict(doc, str(RUN_FILE), RUN_FILE.parent)
    with solver.Simulation(cfg, comm) as sim:
        newtons, start = 0, time.perf_counter()
        for _ in range(steps):
            info = sim.step(dt)
            if not info.converged:
                raise SystemExit(f"Newton failed ({newton}, dt = {dt:g}): {info.reason}")
            newtons += info.newton_iterations
        wall = time.perf_counter() - start
        fields = np.concatenate(
            [b.u.x.array[: b.u.x.index_map.size_local * b.u.x.block_size] for b in sim.blocks]
        )
        return {
            "fields": fields.copy(),
            "newton": newtons,
            "wall_s": wall,
            "unknowns": sim.problem.unknowns,
        }


def distance(a: np.ndarray, b: np.ndarray, comm: MPI.Comm) -> dict[str, float]:
    """Weighted RMS (the controller's norm, b the reference) and largest relative difference."""
    weighted = ((a - b) / (ATOL + RTOL * np.abs(b))) ** 2
    total, count = comm.allreduce(np.array([weighted.sum(), a.size]), op=MPI.SUM)
    largest = comm.allreduce(
        float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))), op=MPI.MAX
    )
    return {"weighted_rms": math.sqrt(total / count), "max_relative": largest}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=float, default=0.041)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--refine", type=int, default=8, help="reference: steps this many times smaller")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    default = solve(args.size, args.steps, DT, "error", comm)
    old = solve(args.size, args.steps, DT, "residual", comm)
    reference = solve(args.size, args.steps * args.refine, DT / args.refine, "residual", comm)
    ref = reference["fields"]
    record = {
        "problem": "exchange benchmark (runs/exchange_3d), backward Euler",
        "size": args.size,
        "unknowns": default["unknowns"],
        "ranks": comm.size,
        "dt": DT,
        "steps": args.steps,
        "reference_dt": DT / args.refine,
        "newton": {"error": default["newton"], "residual": old["newton"]},
        "wall_s": {"error": default["wall_s"], "residual": old["wall_s"]},
        "time_error": distance(old["fields"], ref, comm),
        "default_error": distance(default["fields"], ref, comm),
        "newton_difference": distance(default["fields"], old["fields"], comm),
        "converged": True,
    }
    return report(record, args.json, comm)


if __name__ == "__main__":
    run_main(main)
