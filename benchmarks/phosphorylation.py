"""Time the engine on SMART's example 3: phosphorylation at the membrane of a ball.

The problem is ``runs/phosphorylation/config.toml`` (Meyers, Craig & Odde 2006;
example 3 of SMART): one cytosolic species, a kinase flux on the membrane, a
phosphatase in the volume; SMART's settings: radius 1 µm, backward Euler, dt = 0.01 s,
100 steps to t = 1 s. The mesh size sets the unknowns (0.1 µm: 3 645, "a few
thousand"). Prints (rank 0) one JSON record, and writes it with ``--json``::

    python benchmarks/phosphorylation.py                    # size 0.1, 100 steps
    mpiexec -n 2 python benchmarks/phosphorylation.py --size 0.05 --json out.json

The record has the per-step statistics of ``timing.py`` (mean over steps 2..N, the
first step apart), the set-up time, the mean of A at t = 1 s against the closed-form
steady state (the run has reached it: 10 decay times 1/k_p), and the ratio of the
time per step to SMART's. SMART (legacy FEniCS, serial) takes 0.3–1 s per step on
problems of a few thousand unknowns on machines like this 2-core one
(``SMART_STEP_S``); it cannot be installed beside dolfinx 0.11, so that figure is not
re-measured here, and the ratio is against its lower end.
"""

from __future__ import annotations

import argparse
import sys
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

import dolfinx  # noqa: E402
from dolfinx import fem  # noqa: E402
from engine import SOURCE_HASH  # noqa: E402
from timing import peak_rss_mib, report, run_main, time_loop  # noqa: E402

import solver  # noqa: E402
from tests.verification.test_phosphorylation import exact_mean  # noqa: E402

RUN_FILE = ROOT / "runs" / "phosphorylation" / "config.toml"
DT, STEPS = 0.01, 100  # s: SMART's example 3
SMART_STEP_S = (0.3, 1.0)  # s per step, a few thousand unknowns (see the docstring)


def run(size: float, steps: int, comm: MPI.Comm = MPI.COMM_WORLD) -> dict:
    start = time.perf_counter()
    overrides = [f"mesh.size={size}", f"mesh.inner_size={size}", f"time.end={steps * DT}"]
    cfg = solver.load_config(RUN_FILE, [*overrides, f"time.dt={DT}", "time.scheme=euler"])
    comm.Barrier()
    t0 = time.perf_counter()
    sim = solver.Simulation(cfg, comm)
    comm.Barrier()
    setup = time.perf_counter() - t0

    def one_step() -> tuple[int, int, str, bool]:
        info = sim.step(DT)
        return info.newton_iterations, info.linear_iterations, info.reason, info.converged

    stats, _ = time_loop(one_step, steps, comm)
    one = fem.Constant(sim.geometry.mesh, 1.0)
    volume = comm.allreduce(fem.assemble_scalar(fem.form(one * sim.geometry.dx)))
    mean = sim.totals()["total_A"] / volume
    exact = exact_mean(1.0)
    peak_sum, peak_max = peak_rss_mib(comm)
    record = {
        "code": "engine",
        "problem": "phosphorylation (SMART example 3), radius 1 um",
        "versions": {"dolfinx": dolfinx.__version__},
        "engine_source_sha256": SOURCE_HASH,
        "mesh_size": size,
        "ranks": comm.size,
        "unknowns": sim.problem.unknowns,
        "dt": DT,
        "steps": steps,
        "setup_s": setup,
        **stats,
        "mean_A_final": mean,
        "mean_A_steady_exact": exact,
        "mean_A_relative_error": abs(mean - exact) / exact,
        "smart_step_s": list(SMART_STEP_S),
        "ratio_to_smart_fastest": stats["step_s"] / SMART_STEP_S[0],
        "peak_rss_mib": peak_sum,
        "peak_rss_mib_max_rank": peak_max,
        "wall_s": time.perf_counter() - start,
    }
    sim.problem.destroy()
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=float, default=0.1, help="mesh size (µm), uniform")
    p.add_argument("--steps", type=int, default=STEPS, help=f"steps of dt = {DT} s")
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    args = p.parse_args(argv)
    if args.steps < 2:
        p.error("--steps must be at least 2 (the first step is timed apart)")
    comm = MPI.COMM_WORLD
    return report(run(args.size, args.steps, comm), args.json, comm)


if __name__ == "__main__":
    run_main(main)
