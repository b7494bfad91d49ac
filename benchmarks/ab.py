"""A/B: two variants of one benchmark script, run in turn, compared pair by pair.

A variant is a set of the script's arguments, optionally on another revision of the
engine (``--b-rev``: checked out once with ``git worktree`` under
``benchmarks/results/worktrees/``; the current benchmark script and harness are
copied into it, so both variants are measured the same way). The runs alternate
A B A B ..., each under ``mpiexec`` with OMP_NUM_THREADS=1, and every ratio A/B is
taken within a pair, so a machine whose speed drifts (other jobs) still gives
meaningful ratios. Prints and writes (``--out``) one JSON record: for each metric the
median, minimum and maximum of A, of B and of the pairwise ratio::

    python benchmarks/ab.py --script chemotaxis.py --pairs 3 \\
        --a "--steps 30" --b "--steps 30 --set solver.newton=residual"
    python benchmarks/ab.py --script chemotaxis.py --ranks 2 --b-rev 20e6999 \\
        --a "--mode adaptive" --b "--mode adaptive"
    python benchmarks/ab.py --script engine.py --a "--size 0.041 --steps 30" \\
        --b "--size 0.041 --steps 30 --petsc snes_lag_preconditioner=2"

``process_wall_s`` is the whole command from outside (start-up, mesh and set-up
included); the other metrics are the script's own fields.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
HARNESS = ("timing.py",)
METRICS = (
    "process_wall_s",
    "step_s",
    "run_s",
    "setup_s",
    "steps",
    "newton_per_step",
    "krylov_per_newton",
    "unknown_steps_per_s_per_rank",
    "peak_rss_mib",
    "pool_drift",
)


def checkout(revision: str, path: Path) -> None:
    """``git worktree add`` of ``revision`` at ``path``; exits with git's reason if it fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(path), revision]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"cannot check out revision {revision!r}: {proc.stderr.strip()}")


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def write_record(record: dict, out: Path) -> None:
    """Print ``record`` as JSON and write it to ``out``."""
    text = json.dumps(record, indent=2)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


def worktree(revision: str, script: str) -> Path:
    """A checkout of ``revision`` with the current script and harness (made once)."""
    path = RESULTS / "worktrees" / revision
    if not (path / "solver").exists():
        checkout(revision, path)
    for name in (script, *HARNESS):
        shutil.copy2(HERE / name, path / "benchmarks" / name)
    return path


def environment(tree: Path) -> dict[str, str]:
    """A benchmark subprocess's environment: the engine of ``tree``, one thread per rank."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def one_run(tree: Path, script: str, args: list[str], ranks: int, tag: str, timeout: float):
    """One run of ``script`` in ``tree``: its JSON record, with the process wall time."""
    folder = RESULTS / "ab"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{tag}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(tree / "benchmarks" / script), *args, "--json", str(out)]
    mpiexec = Path(sys.executable).parent / "mpiexec"
    cmd = [str(mpiexec if mpiexec.exists() else "mpiexec"), "-n", str(ranks), *cmd]
    env = environment(tree)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=tree, timeout=timeout, check=False
    )
    wall = time.perf_counter() - start
    (folder / f"{tag}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(
            f"{tag}: {' '.join(cmd)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    record = json.loads(out.read_text())
    record["process_wall_s"] = wall
    return record


def value(record: dict, key: str) -> float | None:
    """A metric of a record (``setup_s`` may be a table with a total)."""
    v = record.get(key)
    if isinstance(v, dict):
        v = v.get("total")
    return float(v) if isinstance(v, int | float) else None


def summary(values: list[float]) -> dict[str, float]:
    """Median, minimum and maximum."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--script", default="chemotaxis.py", help="a script in benchmarks/")
    p.add_argument("--a", default="", help="arguments of variant A (one string)")
    p.add_argument("--b", default="", help="arguments of variant B (one string)")
    p.add_argument("--a-rev", default=None, help="engine revision of A (default: this tree)")
    p.add_argument("--b-rev", default=None, help="engine revision of B (default: this tree)")
    p.add_argument("--pairs", type=positive, default=3)
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    p.add_argument("--out", type=Path, default=RESULTS / "ab.json")
    args = p.parse_args(argv)
    trees = {
        "A": worktree(args.a_rev, args.script) if args.a_rev else ROOT,
        "B": worktree(args.b_rev, args.script) if args.b_rev else ROOT,
    }
    variant_args = {"A": shlex.split(args.a), "B": shlex.split(args.b)}
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    stem = args.out.stem
    load = os.getloadavg()
    for k in range(args.pairs):
        for name in ("A", "B"):
            tag = f"{stem}-{name}{k}"
            print(f"--> {tag}", file=sys.stderr, flush=True)
            record = one_run(
                trees[name], args.script, variant_args[name], args.ranks, tag, args.timeout
            )
            runs[name].append(record)
    table: dict[str, dict] = {}
    for key in METRICS:
        a = [value(r, key) for r in runs["A"]]
        b = [value(r, key) for r in runs["B"]]
        if any(v is None for v in a + b):
            continue
        entry = {"A": summary(a), "B": summary(b)}  # type: ignore[arg-type]
        if all(y for y in b):
            entry["ratio_A_over_B"] = summary([x / y for x, y in zip(a, b, strict=True)])  # type: ignore[operator]
        table[key] = entry
    first = {name: runs[name][0] for name in runs}
    record = {
        "script": args.script,
        "ranks": args.ranks,
        "pairs": args.pairs,
        "A": {"args": args.a, "revision": args.a_rev or "working tree"},
        "B": {"args": args.b, "revision": args.b_rev or "working tree"},
        "unknowns": {name: first[name].get("unknowns") for name in first},
        "readouts": {name: first[name].get("readouts") for name in first},
        "load_average_at_start": load,
        "metrics": table,
    }
    write_record(record, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
