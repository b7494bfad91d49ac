"""Time the default 11-species chemotaxis model (``runs/chemotaxis``) as users run it.

Two modes, both through the public API (``solver.load_config`` + ``solver.Simulation``):

* ``fixed`` (default): ``--steps`` steps of ``--dt`` (1 s) from t = 0, BDF2; the
  per-step statistics of ``timing.py`` over steps 2..N and the throughput in
  unknown·steps per second per rank;
* ``adaptive``: the whole run of the run file (300 s, adaptive BDF2) with its outputs
  written to a temporary folder, as ``polarity run`` does: set-up and run wall time,
  accepted and rejected steps, Newton and Krylov iterations, the read-outs at the end.

The mesh is the run file's unless ``--size``/``--inner-size`` are given; ``--set``
passes any run-file value (``--set solver.newton=residual``), ``--petsc`` a PETSc
option, ``--log-view`` prints PETSc's performance table (stderr) at the end. One
JSON record on stdout (rank 0), also written with ``--json``::

    python benchmarks/chemotaxis.py --steps 30 --json out.json
    mpiexec -n 2 python benchmarks/chemotaxis.py --mode adaptive
    python benchmarks/chemotaxis.py --set solver.newton=residual --steps 30

The record holds the engine's phase timers (``Problem.timers``: residual and Jacobian
assembly, the once-per-step work, the SNES solves), the peak memory (sum over ranks,
and per unknown), the drift of the conserved pools and the code hash of
``engine.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # a dolfinx installed another way
    pass

from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

import dolfinx  # noqa: E402
from engine import SOURCE_HASH  # noqa: E402
from timing import krylov_rtol, peak_rss_mib, report, run_main, time_loop  # noqa: E402

import solver  # noqa: E402
from solver.time.loop import integrate  # noqa: E402

RUN_FILE = ROOT / "runs" / "chemotaxis" / "config.toml"
READOUTS = (
    "PI_P",
    "PI_Rac_m",
    "angle_P",
    "angle_Rac_m",
    "FB_P",
    "FB_Rac_m",
    "FB_T_m",
    "FB_Rho_m",
    "loggain_P",
    "corr_P_T_m",
    "corr_Rac_m_Rho_m",
)


def overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` items of the benchmark's run file."""
    items = []
    if args.size is not None:
        items.append(f"mesh.size={args.size}")
    if args.inner_size is not None:
        items.append(f"mesh.inner_size={args.inner_size}")
    if args.mode == "fixed":
        items += ["time.adaptive=false", f"time.dt={args.dt}", f"time.end={args.steps * args.dt}"]
    items += [f"solver.petsc.{kv}" for kv in args.petsc]
    return items + list(args.set)


def _pools(totals: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in totals.items() if k.startswith("pool_")}


def _drift(before: dict[str, float], after: dict[str, float]) -> float:
    return max((abs(after[k] - v) / abs(v) for k, v in before.items()), default=0.0)


def run(args: argparse.Namespace, comm: MPI.Comm) -> dict:
    start = time.perf_counter()
    items = overrides(args)
    cfg = solver.load_config(RUN_FILE, items)
    comm.Barrier()
    t0 = time.perf_counter()
    sim = solver.Simulation(cfg, comm)
    comm.Barrier()
    setup = time.perf_counter() - t0
    problem = sim.problem
    unknowns = problem.unknowns
    pools = _pools(sim.totals())
    record: dict = {
        "code": "engine",
        "case": "chemotaxis",
        "mode": args.mode,
        "overrides": items,
        "versions": {"dolfinx": dolfinx.__version__, "petsc": PETSc.Sys.getVersion()},
        "engine_source_sha256": SOURCE_HASH,
        "petsc_options": dict(problem.options),
        "krylov_rtol": krylov_rtol(problem),
        "newton": getattr(cfg.solver, "newton", "residual"),
        "mesh": {k: v for k, v in cfg.mesh.items() if isinstance(v, int | float | str)},
        "ranks": comm.size,
        "unknowns": unknowns,
        "dofs": {
            b.name: b.space.dofmap.index_map.size_global * b.space.dofmap.index_map_bs
            for b in sim.blocks
        },
        "setup_s": setup,
    }
    if args.mode == "fixed":
        record.update(_fixed(sim, args, comm))
    else:
        record.update(_adaptive(sim, comm))
    record["timers_s"] = {
        k: comm.allreduce(v, op=MPI.MAX) for k, v in record.pop("_timers").items()
    }
    peak_sum, peak_max = peak_rss_mib(comm)
    record.update(
        peak_rss_mib=peak_sum,
        peak_rss_mib_max_rank=peak_max,
        peak_rss_kib_per_unknown=1024.0 * peak_sum / unknowns,
        pool_drift=_drift(pools, _pools(sim.totals())),
        # GMRES/Jacobi iterations that estimated Newton's second update (not in krylov_*)
        estimate_iterations=getattr(getattr(problem, "estimate", None), "iterations", 0),
        readouts={k: sim.observe().get(k) for k in READOUTS},
        wall_s=time.perf_counter() - start,
    )
    if args.log_view:
        PETSc.Log.view()
    sim.close()
    return record


def _fixed(sim, args: argparse.Namespace, comm: MPI.Comm) -> dict:
    """``--steps`` steps of ``--dt`` from t = 0."""
    problem = sim.problem
    first: dict[str, float] = {}

    def one_step() -> tuple[int, int, str, bool]:
        info = sim.step(args.dt)
        return info.newton_iterations, info.linear_iterations, info.reason, info.converged

    stats, rest = time_loop(
        one_step, args.steps, comm, on_first=lambda: first.update(problem.timers)
    )
    done = stats["steps_done"]
    timers = {k: v - first.get(k, 0.0) for k, v in problem.timers.items()}
    timers["steps_wall"] = rest
    per_core = problem.unknowns * (done - 1) / rest / comm.size if done > 1 else float("nan")
    return {
        "dt": args.dt,
        "steps": args.steps,
        **stats,
        "unknown_steps_per_s_per_rank": per_core,
        "unknown_newton_per_s_per_rank": per_core * stats["newton_per_step"],
        "_timers": timers,
    }


def _adaptive(sim, comm: MPI.Comm) -> dict:
    """The whole run of the run file, with its outputs, into a temporary folder."""
    counts = {"newton": 0, "krylov": 0, "attempts": 0}
    attempt = sim.stepper.attempt

    def counted(dt: float):
        info = attempt(dt)
        counts["newton"] += info.newton_iterations
        counts["krylov"] += info.linear_iterations
        counts["attempts"] += 1
        return info

    sim.stepper.attempt = counted
    folder = tempfile.mkdtemp(prefix="polarity-bench-") if comm.rank == 0 else None
    folder = comm.bcast(folder, root=0)
    comm.Barrier()
    t0 = time.perf_counter()
    result = integrate(sim, Path(folder), overwrite=True)
    comm.Barrier()
    wall = time.perf_counter() - t0
    if comm.rank == 0:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return {
        "status": result.status,
        "converged": result.status == "completed",
        "run_s": wall,
        "t_end": result.t,
        "steps": result.steps,
        "attempts": counts["attempts"],
        "newton_total": counts["newton"],
        "krylov_total": counts["krylov"],
        "newton_per_step": counts["newton"] / max(counts["attempts"], 1),
        "krylov_per_newton": counts["krylov"] / max(counts["newton"], 1),
        "_timers": dict(sim.problem.timers),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("fixed", "adaptive"), default="fixed")
    p.add_argument("--steps", type=int, default=30, help="fixed mode: steps (default 30)")
    p.add_argument("--dt", type=float, default=1.0, help="fixed mode: step (s, default 1)")
    p.add_argument("--size", type=float, default=None, help="membrane element size (µm)")
    p.add_argument("--inner-size", type=float, default=None, help="interior size (µm)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--petsc", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--log-view", action="store_true", help="PETSc's performance table")
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    args = p.parse_args(argv)
    if args.mode == "fixed" and args.steps < 2:
        p.error("--steps must be at least 2 (the first step is timed apart)")
    if args.log_view:
        PETSc.Log.begin()
    comm = MPI.COMM_WORLD
    return report(run(args, comm), args.json, comm)


if __name__ == "__main__":
    run_main(main)
