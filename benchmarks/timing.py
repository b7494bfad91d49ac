"""Timing harness shared by the benchmark scripts (not by the codes they time).

Per-step statistics, peak memory and a digest of source code, so the engine's and
the hand-written script's records have the same fields computed the same way.
"""

from __future__ import annotations

import ast
import json
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from mpi4py import MPI

import numpy as np


def code_digest(data: bytes) -> bytes:
    """What a source file executes: its AST without docstrings (comments drop out too)."""
    try:
        tree = ast.parse(data)
    except SyntaxError:
        return data
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def max_over_ranks(comm: MPI.Comm, values: list[float]) -> list[float]:
    """Element-wise maximum over ranks (every rank has the same number of values)."""
    local = np.asarray(values, dtype=np.float64)
    result = np.empty_like(local)
    comm.Allreduce(local, result, op=MPI.MAX)
    return result.tolist()


def peak_rss_mib(comm: MPI.Comm) -> tuple[float, float]:
    """(sum over ranks, largest rank) of the peak resident set size, MiB."""
    mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return comm.allreduce(mine, op=MPI.SUM), comm.allreduce(mine, op=MPI.MAX)


def step_statistics(
    comm: MPI.Comm,
    steps: int,
    first_step: float,
    rest: float,
    step_times: list[float],
    cpu_times: list[float],
    newton: list[int],
    krylov: list[int],
    reasons: list[str],
) -> dict:
    """Record fields of a stepping run: ``first_step`` apart, ``rest`` (s) over steps 2..N.

    Both codes time their loops the same way and hand the numbers here, so their
    records agree field by field.
    """
    done = len(step_times)
    n_newton, n_krylov = int(sum(newton)), int(sum(krylov))
    return {
        "steps_done": done,
        "converged": done == steps and reasons[-1].startswith("CONVERGED"),
        "first_step_s": first_step,
        "step_s": rest / (done - 1) if done > 1 else float("nan"),
        "step_s_median": float(np.median(step_times[1:])) if done > 1 else float("nan"),
        "step_s_min": float(np.min(step_times[1:])) if done > 1 else float("nan"),
        "step_s_max": float(np.max(step_times[1:])) if done > 1 else float("nan"),
        # CPU seconds per step (max over ranks; less sensitive to other loads than wall time)
        "step_cpu_s": comm.allreduce(float(np.mean(cpu_times[1:])), op=MPI.MAX)
        if done > 1
        else float("nan"),
        "newton_total": n_newton,
        "newton_per_step": n_newton / done,
        "krylov_total": n_krylov,
        "krylov_per_newton": n_krylov / max(n_newton, 1),
        "snes_reasons": {r: reasons.count(r) for r in sorted(set(reasons))},
        # per step (rank 0 wall, max-over-ranks CPU): to compare codes over the same steps
        "by_step": {
            "wall_s": step_times,
            "cpu_s": max_over_ranks(comm, cpu_times),
            "newton": newton,
            "krylov": krylov,
        },
    }


def time_loop(
    step: Callable[[], tuple[int, int, str, bool]],
    steps: int,
    comm: MPI.Comm,
    on_first: Callable[[], None] | None = None,
    after: Callable[[], None] | None = None,
) -> tuple[dict, float]:
    """Time ``steps`` calls of ``step`` (one time step; returns Newton and Krylov
    iterations, the SNES reason and whether it converged), stopping at a failure.

    ``after`` runs after each converged step, outside the step's time (e.g. totals);
    ``on_first`` once after the first step, when the clock of steps 2..N starts (e.g.
    to take the code's own timers). Returns the :func:`step_statistics` fields and the
    wall seconds of steps 2..N.
    """
    newton, krylov, reasons, step_times, cpu_times = [], [], [], [], []
    comm.Barrier()
    loop_start = rest_start = time.perf_counter()
    first_step = float("nan")
    for k in range(steps):
        t, cpu = time.perf_counter(), time.process_time()
        iterations, linear, reason, converged = step()
        step_times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - cpu)
        newton.append(iterations)
        krylov.append(linear)
        reasons.append(reason)
        if not converged:
            break
        if after is not None:
            after()
        if k == 0:
            comm.Barrier()
            first_step = time.perf_counter() - loop_start
            if on_first is not None:
                on_first()
            rest_start = time.perf_counter()
    comm.Barrier()
    rest = time.perf_counter() - rest_start if len(step_times) > 1 else float("nan")
    stats = step_statistics(
        comm, steps, first_step, rest, step_times, cpu_times, newton, krylov, reasons
    )
    return stats, rest


def report(record: dict, path: Path | None, comm: MPI.Comm) -> int:
    """Print the record as JSON on rank 0 (and write it to ``path``); exit status."""
    if comm.rank == 0:
        text = json.dumps(record, indent=2)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n")
        print(text, flush=True)
    return 0 if record["converged"] else 1


def run_main(main: Callable[[], int]) -> None:
    """Run a script's ``main``; an error on one rank aborts all (the others would wait forever)."""
    try:
        status = main()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)
    sys.exit(status)


def krylov_rtol(problem) -> dict:
    """How the engine set GMRES's tolerance: fixed, or forced by Newton's first update.

    Engines before the forced tolerance (run by ``targets.py --old``) have a fixed one.
    """
    forcing = getattr(getattr(problem, "error_test", None), "forcing", None)
    if forcing is None:
        return {"fixed": problem.options.get("ksp_rtol")}
    return forcing.describe()  # as run.json states it
