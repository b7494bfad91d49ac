"""A/B: the engine of any number of compartments against the two-compartment one.

The same problem, the exchange benchmark (``benchmarks/engine.py``: 3-D unit ball,
cytosol + membrane, nonlinear exchange, backward Euler, dt = 0.01 s), is timed with
this checkout's engine (A) and with the engine of a baseline revision (B, default the
last revision before compartments were generalised), each through its own
``benchmarks/engine.py``. The runs alternate A B A B ..., and the ratio of the
per-step wall times is taken pair by pair (pairing keeps a ratio meaningful when the
machine's speed drifts). The baseline is checked out once with ``git worktree`` under
``benchmarks/results/``. Prints (and writes, ``--out``) one JSON record::

    python benchmarks/compartments.py --size 0.041 --steps 30 --pairs 3
    python benchmarks/compartments.py --ranks 2 ...

``step_ratio`` < 1 means this checkout is faster. Both engines must agree on the
totals after the same steps (to 1e-10 relative), or the record says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
from ab import checkout, environment, positive, summary, write_record  # noqa: E402

#: the last revision whose engine knew exactly two compartments
BASELINE = "76f1256"
#: A solves Newton as B does (to a residual of 1e-10; a residual tolerance selects that
#: rule): with the default rule, which stops at 1 % of a step's error allowance, the
#: species totals differ from B's by about 1e-5 and only the pools agree to 1e-10
SAME_NEWTON = ["--petsc", "snes_rtol=1e-10"]


def worktree(revision: str) -> Path:
    """A checkout of ``revision`` under ``benchmarks/results`` (made once)."""
    path = RESULTS / f"baseline-{revision}"
    if not (path / "benchmarks" / "engine.py").exists():
        checkout(revision, path)
    return path


def one_run(tree: Path, args: argparse.Namespace, tag: str, extra: list[str]) -> dict:
    """One ``engine.py`` run in ``tree`` (``extra``: more arguments); its JSON record."""
    out = RESULTS / f"compartments-{tag}.json"
    cmd = [sys.executable, str(tree / "benchmarks" / "engine.py"), "--size", str(args.size)]
    cmd += ["--steps", str(args.steps), "--json", str(out), *extra]
    if args.ranks > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        cmd = [str(mpiexec), "-n", str(args.ranks), *cmd]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=environment(tree), cwd=tree, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: engine.py failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=float, default=0.041, help="gmsh mesh size (µm)")
    p.add_argument("--steps", type=int, default=30, help="time steps of dt = 0.01 s")
    p.add_argument("--pairs", type=positive, default=3, help="A/B pairs of runs")
    p.add_argument("--ranks", type=int, default=1, help="MPI ranks of each run")
    p.add_argument("--baseline", default=BASELINE, help="the revision of B")
    p.add_argument("--out", type=Path, default=RESULTS / "compartments.json")
    args = p.parse_args(argv)
    base = worktree(args.baseline)
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    for k in range(args.pairs):
        runs["A"].append(one_run(ROOT, args, f"A{k}", SAME_NEWTON))
        runs["B"].append(one_run(base, args, f"B{k}", []))
    a, b = runs["A"], runs["B"]
    ratios = [x["step_s"] / y["step_s"] for x, y in zip(a, b, strict=True)]
    unknowns = a[0]["unknowns"]
    totals_a, totals_b = a[0].get("totals_final", {}), b[0].get("totals_final", {})
    agree = all(
        abs(totals_a[k] - totals_b[k]) <= 1e-10 * max(abs(totals_b[k]), 1e-300)
        for k in totals_b
        if k in totals_a
    )
    record = {
        "problem": "exchange benchmark (runs/exchange_3d), backward Euler, dt = 0.01 s",
        "size_um": args.size,
        "steps": args.steps,
        "ranks": args.ranks,
        "unknowns": {"A": unknowns, "B": b[0]["unknowns"]},
        "baseline": args.baseline,
        "step_s": {"A": summary([x["step_s"] for x in a]), "B": summary([y["step_s"] for y in b])},
        "step_ratio_A_over_B": summary(ratios),
        "us_per_unknown_step": {
            "A": 1e6 * statistics.median(x["step_s"] for x in a) / unknowns,
            "B": 1e6 * statistics.median(y["step_s"] for y in b) / b[0]["unknowns"],
        },
        "newton_per_step": {"A": a[0]["newton_per_step"], "B": b[0]["newton_per_step"]},
        "krylov_per_newton": {"A": a[0]["krylov_per_newton"], "B": b[0]["krylov_per_newton"]},
        "setup_s": {
            "A": summary([x["setup_s"]["total"] for x in a]),
            "B": summary([y["setup_s"]["total"] for y in b]),
        },
        "peak_rss_mib": {"A": a[0].get("peak_rss_mib"), "B": b[0].get("peak_rss_mib")},
        "totals_agree_1e-10": agree,
    }
    write_record(record, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
