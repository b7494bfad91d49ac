"""Strong and weak scaling of the engine, on one machine or in a Slurm allocation.

**Strong scaling**: one problem on 1, 2, 4, ... ranks (``--ranks``); speed-up and
parallel efficiency relative to the fewest ranks. **Weak scaling**: the unknowns per
rank held constant, the mesh refined with the ranks (the exchange benchmark's unit
ball: unknowns ∝ size⁻³, so size = ``--size`` · (ranks/first)^(−1/3)). Both record
the Krylov iterations per Newton iteration against the ranks: the preconditioner is
rank-count independent when they stay flat.

Problems (``--problem``): ``exchange`` (``engine.py``, 2 species, backward Euler,
dt = 0.01 s) or ``chemotaxis`` (``chemotaxis.py``, the 11-species default, fixed
BDF2 steps of 1 s; weak scaling refines its membrane size with (ranks)^(−1/2), the
membrane dominating its unknowns). Each run is a subprocess under the launcher
(``--launcher``: ``mpiexec`` next to this Python, or e.g. ``srun`` inside an
allocation) with OMP_NUM_THREADS=1; its JSON record and log go to
``benchmarks/results/scaling/``. One JSON summary on stdout and in ``--out``::

    python benchmarks/scaling.py --mode strong --ranks 1 2 --size 0.041 --steps 20
    python benchmarks/scaling.py --mode weak --ranks 1 2 --size 0.041 --steps 20
    python benchmarks/scaling.py --problem chemotaxis --mode strong --ranks 1 2 --steps 30
    sbatch benchmarks/scaling.sbatch           # 1..64 ranks on a cluster (see the file)

Never run more ranks than cores: oversubscribed ranks measure the scheduler.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from ab import environment  # noqa: E402

RESULTS = HERE / "results"
SCRIPTS = {"exchange": "engine.py", "chemotaxis": "chemotaxis.py"}


def launcher(name: str | None) -> list[str]:
    """The command that starts N ranks, without N (``-n`` is added)."""
    if name:
        return shlex.split(name)
    local = Path(sys.executable).parent / "mpiexec"
    return [str(local) if local.exists() else "mpiexec"]


def size_for(args: argparse.Namespace, ranks: int) -> float:
    """The mesh size of a run: fixed (strong) or refined with the ranks (weak)."""
    if args.mode == "strong":
        return args.size
    power = 1 / 3 if args.problem == "exchange" else 1 / 2
    return args.size * (ranks / args.ranks[0]) ** (-power)


def one_run(args: argparse.Namespace, ranks: int) -> dict:
    """One benchmark run on ``ranks`` ranks: its JSON record (or the failure)."""
    folder = RESULTS / "scaling"
    folder.mkdir(parents=True, exist_ok=True)
    size = size_for(args, ranks)
    tag = f"{args.problem}-{args.mode}-{size:.4g}-n{ranks}"
    out, log = folder / f"{tag}.json", folder / f"{tag}.log"
    out.unlink(missing_ok=True)
    script = [sys.executable, str(HERE / SCRIPTS[args.problem]), "--steps", str(args.steps)]
    script += ["--size", repr(size), "--json", str(out), *shlex.split(args.extra)]
    cmd = [*launcher(args.launcher), "-n", str(ranks), *script]
    env = environment(ROOT)
    print(f"--> {tag}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(
            cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False
        )
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not out.exists():
        return {"ranks": ranks, "size": size, "failed": True, "returncode": proc.returncode}
    record = json.loads(out.read_text())
    return {
        "ranks": ranks,
        "size": size,
        "unknowns": record["unknowns"],
        "unknowns_per_rank": record["unknowns"] / ranks,
        "step_s": record["step_s"],
        "step_s_median": record["step_s_median"],
        "step_cpu_s": record.get("step_cpu_s"),
        "newton_per_step": record["newton_per_step"],
        "krylov_per_newton": record["krylov_per_newton"],
        "setup_s": record["setup_s"]["total"]
        if isinstance(record["setup_s"], dict)
        else record["setup_s"],
        "peak_rss_mib": record.get("peak_rss_mib"),
        "process_wall_s": wall,
    }


def summarise(args: argparse.Namespace, rows: list[dict]) -> dict:
    """Speed-up and efficiency against the first rank count."""
    good = [r for r in rows if not r.get("failed")]
    if good:
        base = good[0]
        for r in good:
            ratio = r["ranks"] / base["ranks"]
            if args.mode == "strong":
                r["speedup"] = base["step_s"] / r["step_s"]
                r["efficiency"] = r["speedup"] / ratio
            else:  # the same work per rank: the time per step should stay flat
                r["efficiency"] = base["step_s"] / r["step_s"]
            r["krylov_growth"] = r["krylov_per_newton"] / base["krylov_per_newton"]
    return {
        "problem": args.problem,
        "mode": args.mode,
        "steps": args.steps,
        "extra": args.extra,
        "host": os.uname().nodename,
        "cores": os.cpu_count(),
        "load_average_at_start": args.load,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problem", choices=sorted(SCRIPTS), default="exchange")
    p.add_argument("--mode", choices=("strong", "weak"), default="strong")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--size", type=float, default=None, help="mesh size at the first ranks")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--extra", default="", help="more arguments of the benchmark script")
    p.add_argument("--launcher", default=None, help='e.g. "srun --cpu-bind=cores"')
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.size is None:
        args.size = 0.041 if args.problem == "exchange" else 0.4
    args.load = os.getloadavg()
    rows = [one_run(args, n) for n in args.ranks]
    record = summarise(args, rows)
    text = json.dumps(record, indent=2)
    print(text)
    out = args.out or RESULTS / f"scaling-{args.problem}-{args.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return 0 if all(not r.get("failed") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
