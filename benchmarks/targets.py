"""The speed targets, each measured in one invocation, with a pass/fail per target.

Runs, one after the other (each a subprocess under ``mpiexec`` with
OMP_NUM_THREADS=1, records and logs in ``benchmarks/results/targets/``):

1. ``chemotaxis.py --steps 30`` on 1 rank: the 11-species default at its resolved mesh
   (31,099 unknowns), fixed BDF2 steps of dt = 1 s from t = 0. Target: at least
   200,000 unknown·steps per second per core (mean over steps 2..30, the start-up
   transient included).
2. ``chemotaxis.py --mode adaptive`` on 2 ranks: the whole adaptive 300-s run with its
   outputs. Target: under 30 s.
3. ``engine.py --size 0.041 --steps 20`` on 1 rank: the exchange benchmark (51,855
   unknowns) at default settings. Target: at least 300,000 unknown·steps/s per core.
4. ``exchange_error.py --size 0.041 --steps 20``: its time-step error with the default
   Newton rule against a reference with 8× smaller steps, and with the old rule
   (residual 1e-10). Target: the two errors equal to 1 %.
5. ``baseline_dolfinx.py --size 0.041 --steps 20``, GMRES + field-split GAMG, and
   (``--mumps``) MUMPS LU: the hand-written peer on the same problem and steps as 3;
   the ratios engine/peer of the time per step (steps 2..20 of both).
6. ``engine.py --size 0.025 --steps 20`` on 1 and 2 ranks (201,742 unknowns),
   ``--pairs`` times (3), alternating. Target: the median of the pairs' speed-ups
   (time per step, 1 rank over 2) at least 1.9, Krylov iterations per Newton
   iteration within 10 %. One pair alone varies by ±0.05 on a 2-core machine.
7. Peak memory per unknown of runs 1 and 3 against the engine before this work
   (``--old``, revision 368d27a, checked out once with ``git worktree``; the same
   scripts, the same meshes: the old engine's chemotaxis run file is given the resolved
   mesh). Target: not more than 5 % above it.

One JSON record on stdout and in ``--out`` (default ``results/targets.json``)::

    python benchmarks/targets.py                 # about 6 min on 2 quiet cores
    python benchmarks/targets.py --mumps         # + MUMPS LU (about 1 min more)

The machine must be quiet: other work on it shows as lower speed-ups and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
OLD = "368d27a"  # the engine before the speed work
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from ab import environment, positive, worktree  # noqa: E402


def mpiexec() -> str:
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else "mpiexec"


def old_tree(revision: str) -> Path:
    """A checkout of ``revision`` with today's benchmark scripts (made once)."""
    worktree(revision, "chemotaxis.py")
    return worktree(revision, "engine.py")


def run(tag: str, script: str, args: list[str], ranks: int = 1, tree: Path = ROOT) -> dict:
    """One benchmark run: its JSON record (``failed`` and the log's tail if it failed)."""
    folder = RESULTS / "targets"
    folder.mkdir(parents=True, exist_ok=True)
    out, log = folder / f"{tag}.json", folder / f"{tag}.log"
    out.unlink(missing_ok=True)
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, str(tree / "benchmarks" / script)]
    cmd += [*args, "--json", str(out)]
    env = environment(tree)
    print(f"--> {tag}: {' '.join(cmd[3:])}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=tree)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not out.exists():
        return {"failed": True, "returncode": proc.returncode, "log": log.read_text()[-2000:]}
    record = json.loads(out.read_text())
    record["process_wall_s"] = wall
    return record


def _target(value: float | None, bound: float, at_least: bool) -> dict:
    if value is None:
        return {"value": None, "target": bound, "met": False}
    met = value >= bound if at_least else value <= bound
    return {"value": value, "target": bound, "at_least": at_least, "met": bool(met)}


def _per_unknown(record: dict) -> float | None:
    if record.get("failed"):
        return None
    return 1024.0 * record["peak_rss_mib"] / record["unknowns"]


def measure(args: argparse.Namespace) -> dict:
    r: dict[str, dict] = {}
    r["chemotaxis_fixed"] = run("chemotaxis-fixed-n1", "chemotaxis.py", ["--steps", "30"])
    r["chemotaxis_adaptive"] = run(
        "chemotaxis-adaptive-n2", "chemotaxis.py", ["--mode", "adaptive"], ranks=2
    )
    r["exchange"] = run("exchange-0.041-n1", "engine.py", ["--size", "0.041", "--steps", "20"])
    r["exchange_error"] = run(
        "exchange-error", "exchange_error.py", ["--size", "0.041", "--steps", "20"]
    )
    r["baseline_fieldsplit"] = run(
        "baseline-fieldsplit-0.041",
        "baseline_dolfinx.py",
        ["--size", "0.041", "--steps", "20", "--linear", "fieldsplit"],
    )
    if args.mumps:
        r["baseline_mumps"] = run(
            "baseline-mumps-0.041",
            "baseline_dolfinx.py",
            ["--size", "0.041", "--steps", "20", "--linear", "mumps"],
        )
    for pair in range(args.pairs):  # alternating, so that a drifting machine shows
        for ranks in (1, 2):
            r[f"exchange_200k_n{ranks}_{pair}"] = run(
                f"exchange-0.025-n{ranks}-{pair}",
                "engine.py",
                ["--size", "0.025", "--steps", "20"],
                ranks=ranks,
            )
    if not args.no_old:
        tree = old_tree(args.old)
        r["old_chemotaxis_fixed"] = run(
            "old-chemotaxis-fixed-n1",
            "chemotaxis.py",
            ["--steps", "10", "--size", "0.4", "--inner-size", "2"],
            tree=tree,
        )
        r["old_exchange"] = run(
            "old-exchange-0.041-n1", "engine.py", ["--size", "0.041", "--steps", "20"], tree=tree
        )
    return r


def targets(r: dict[str, dict], args: argparse.Namespace) -> dict:
    def get(name: str, key: str) -> float | None:
        rec = r.get(name, {})
        value = rec.get(key)
        return None if rec.get("failed") or value is None else float(value)

    t: dict[str, dict] = {}
    t["chemotaxis_unknown_steps_per_s_per_core"] = _target(
        get("chemotaxis_fixed", "unknown_steps_per_s_per_rank"), 200_000, True
    )
    t["chemotaxis_adaptive_300s_run_s_2_ranks"] = _target(
        get("chemotaxis_adaptive", "run_s"), 30.0, False
    )
    ex = r.get("exchange", {})
    per_core = None
    if not ex.get("failed"):
        per_core = ex["unknowns"] / ex["step_s"] / ex["ranks"]
    t["exchange_unknown_steps_per_s_per_core"] = _target(per_core, 300_000, True)
    err = r.get("exchange_error", {})
    change = None
    if not err.get("failed"):
        old, new = err["time_error"]["weighted_rms"], err["default_error"]["weighted_rms"]
        change = abs(new - old) / old
    t["exchange_time_error_change"] = _target(change, 0.01, False)
    speedups, growths = [], []
    for pair in range(args.pairs):
        one, two = r.get(f"exchange_200k_n1_{pair}", {}), r.get(f"exchange_200k_n2_{pair}", {})
        if not one.get("failed") and not two.get("failed"):
            speedups.append(one["step_s"] / two["step_s"])
            growths.append(two["krylov_per_newton"] / one["krylov_per_newton"])
    speedup = statistics.median(speedups) if speedups else None
    t["speedup_2_ranks_200k"] = _target(speedup, 1.9, True)
    t["speedup_2_ranks_200k"]["pairs"] = speedups  # the median of these is the value
    t["krylov_growth_2_ranks_200k"] = _target(max(growths) if growths else None, 1.10, False)
    if not args.no_old:
        for new, old, name in (
            ("chemotaxis_fixed", "old_chemotaxis_fixed", "chemotaxis"),
            ("exchange", "old_exchange", "exchange"),
        ):
            a, b = _per_unknown(r.get(new, {})), _per_unknown(r.get(old, {}))
            ratio = a / b if a is not None and b is not None else None
            t[f"peak_memory_per_unknown_{name}_vs_old"] = _target(ratio, 1.05, False)
    ratios = {}
    for peer in ("baseline_fieldsplit", "baseline_mumps"):
        base = r.get(peer)
        if base and not base.get("failed") and not ex.get("failed"):
            ratios[peer] = ex["step_s"] / base["step_s"]
    return {"targets": t, "engine_over_peer_step_time": ratios}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mumps", action="store_true", help="also the MUMPS LU baseline")
    p.add_argument("--old", default=OLD, help=f"the earlier engine's revision (default {OLD})")
    p.add_argument("--no-old", action="store_true", help="skip the earlier engine's runs")
    p.add_argument(
        "--pairs",
        type=positive,
        default=3,
        help="1-rank/2-rank pairs at 200k, alternating (default 3; the median ratio counts)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "targets.json")
    args = p.parse_args(argv)
    start = time.perf_counter()
    load = os.getloadavg()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    records = measure(args)
    summary = targets(records, args)
    record = {
        "benchmark": "targets",
        "commit": commit,
        "host": os.uname().nodename,
        "cores": os.cpu_count(),
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg(),
        "wall_s": time.perf_counter() - start,
        **summary,
        "all_met": all(v["met"] for v in summary["targets"].values()),
        "records": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    brief = {k: v for k, v in record.items() if k != "records"}
    print(json.dumps(brief, indent=2))
    return 0 if record["all_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
