"""Exchange benchmark: the polarity engine against a hand-written dolfinx script.

For each mesh size and each rank count (1, 2) this runs, as subprocesses under
``mpiexec`` with a time limit, ``benchmarks/engine.py`` (the engine, default
iterative solver) and then ``benchmarks/baseline_dolfinx.py`` (plain dolfinx,
MUMPS LU), collects their JSON records, checks that both codes agree on the
final totals of c and m, and writes ``benchmarks/results/exchange.json``, a
table on stdout, and the whole summary as JSON at the end of stdout.

    python benchmarks/run.py                 # the three calibrated sizes (≈10k, 50k, 200k)
    python benchmarks/run.py --quick         # smoke test: one small size, 10 steps
    python benchmarks/run.py --sizes 0.041 --steps 20 --direct

The ratio is engine / baseline time per step (mean over steps 2..N) of the
same size and rank count, measured in the same invocation, one right after
the other; ``cpu ratio`` is the same with CPU seconds, which are less
disturbed by other loads on a shared machine.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from timing import code_digest  # noqa: E402

#: gmsh mesh sizes (µm) of the unit ball → unknowns (cytosol + membrane vertices),
#: calibrated on this generator (gmsh 4.15, HXT): 0.077 → 9 963, 0.041 → 51 855,
#: 0.025 → 201 742 (0.1 → 5 223, 0.05 → 30 431, 0.03 → 121 619)
DEFAULT_SIZES = (0.077, 0.041, 0.025)
QUICK_SIZE = 0.1
RANKS = (1, 2)
#: required relative agreement of the final totals: the engine's Newton stops at 1 % of
#: the error a step may make (solver.fem.newton), the baselines at snes_rtol 1e-10;
#: measured 2e-7 apart after 20 steps
AGREEMENT = 1e-6
BASELINES = ("mumps", "fieldsplit")


def find_mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if not found:
        raise SystemExit("mpiexec not found next to this Python nor on PATH")
    return found


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        mem = round(pages * size / 2**30, 1)
    except (ValueError, OSError):
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": load,
    }


def engine_sources() -> dict:
    """The engine being timed: git commit (read-only query), local changes, source hash."""
    info = {}
    for key, cmd in (
        ("commit", ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        ("local_changes", ["git", "-C", str(ROOT), "status", "--porcelain", "--", "solver"]),
    ):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True)
            info[key] = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            info[key] = None
    digest = hashlib.sha256()
    package = ROOT / "solver"
    files = {}
    for path in sorted(package.rglob("*.py")):
        name, code = str(path.relative_to(package)), code_digest(path.read_bytes())
        digest.update(name.encode() + b"\0")
        digest.update(code)
        files[name] = hashlib.sha256(code).hexdigest()[:12]
    info["sha256"] = digest.hexdigest()[:12]  # the same digest as engine.py's source_hash()
    info["files"] = files
    return info


def run_one(
    script: str, ranks: int, args: list[str], tag: str, timeout: float, folder: Path
) -> dict:
    """Run ``script`` under mpiexec; return its JSON record or a failure record."""
    out = folder / f"{tag}.json"
    out.unlink(missing_ok=True)
    cmd = [find_mpiexec(), "-n", str(ranks), sys.executable, str(HERE / script), *args]
    cmd += ["--json", str(out)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"  # ranks must not oversubscribe the cores with threads
    log = folder / f"{tag}.log"
    print(f"--> {tag}: {' '.join(cmd[2:4])} {script} {' '.join(args)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with log.open("w") as f:
        # own session: on timeout the whole group (mpiexec and its ranks) is ended by its id
        proc = subprocess.Popen(
            cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = "timeout"
    elapsed = time.perf_counter() - start
    if out.exists():
        record = json.loads(out.read_text())
    else:
        tail = log.read_text().splitlines()[-15:]
        record = {"failed": True, "returncode": rc, "log_tail": tail}
    record.update(command=" ".join(cmd), returncode=rc, process_wall_s=elapsed, log=str(log))
    status = "ok" if rc == 0 else f"FAILED ({rc}), see {log}"
    print(f"    {status} in {elapsed:.0f} s", file=sys.stderr, flush=True)
    return record


def agreement(engine: dict, baseline: dict) -> float | None:
    """Largest relative difference of the totals of c and m after the baseline's steps."""
    n = baseline.get("steps_done")
    by_step = engine.get("totals_by_step", {})
    if not n or len(by_step.get("total_c", [])) < n:
        return None
    e = {"total_c": by_step["total_c"][n - 1], "total_m": by_step["total_m"][n - 1]}
    b = baseline["totals_final"]
    return max(abs(e[k] - b[k]) / abs(e[k]) for k in e)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not (b > 0) or math.isnan(a):
        return None
    return a / b


def window_mean(record: dict | None, key: str, steps: int | None) -> float | None:
    """Mean of a per-step series over steps 2..``steps`` (the first step is set-up)."""
    if record is None or record.get("failed") or not steps or steps < 2:
        return None
    series = record.get("by_step", {}).get(key, [])
    if len(series) < steps:
        return None
    return sum(series[1:steps]) / (steps - 1)


def row_of(
    size: float, ranks: int, engine: dict, baseline: dict | None, skipped: str, linear: str
) -> dict:
    ok = not engine.get("failed")
    row = {
        "mesh_size": size,
        "ranks": ranks,
        "baseline_linear": linear,
        "unknowns": engine.get("unknowns"),
        "steps": engine.get("steps"),
        "engine_step_s": engine.get("step_s") if ok else None,
        "engine_step_cpu_s": engine.get("step_cpu_s") if ok else None,
        "engine_newton_per_step": engine.get("newton_per_step"),
        "engine_krylov_per_newton": engine.get("krylov_per_newton"),
        "engine_assembly_share": engine.get("assembly_share"),
        "engine_peak_mib": engine.get("peak_rss_mib"),
        "engine_setup_s": (engine.get("setup_s") or {}).get("total"),
        "engine_first_step_s": engine.get("first_step_s"),
        "engine_drift": engine.get("conservation_drift"),
        # the comparison: both codes over the same steps 2..baseline_steps
        "baseline_steps": None,
        "engine_window_step_s": None,
        "engine_window_step_cpu_s": None,
        "engine_window_newton_per_step": None,
        "baseline_step_s": None,
        "baseline_step_cpu_s": None,
        "baseline_newton_per_step": None,
        "baseline_assembly_share": None,
        "baseline_peak_mib": None,
        "baseline_drift": None,
        "ratio": None,
        "cpu_ratio": None,
        "agreement": None,
        "baseline_note": skipped,
    }
    if baseline is not None and not baseline.get("failed"):
        m = baseline.get("steps_done")
        e_wall = window_mean(engine, "wall_s", m)
        e_cpu = window_mean(engine, "cpu_s", m)
        b_wall = window_mean(baseline, "wall_s", m)
        b_cpu = window_mean(baseline, "cpu_s", m)
        e_newton = engine.get("by_step", {}).get("newton", [])[:m]
        row.update(
            baseline_steps=m,
            engine_window_step_s=e_wall,
            engine_window_step_cpu_s=e_cpu,
            engine_window_newton_per_step=sum(e_newton) / len(e_newton) if e_newton else None,
            baseline_step_s=b_wall,
            baseline_step_cpu_s=b_cpu,
            baseline_newton_per_step=baseline.get("newton_per_step"),
            baseline_assembly_share=baseline.get("assembly_share"),
            baseline_peak_mib=baseline.get("peak_rss_mib"),
            baseline_drift=baseline.get("conservation_drift"),
            ratio=ratio(e_wall, b_wall),
            cpu_ratio=ratio(e_cpu, b_cpu),
            agreement=agreement(engine, baseline),
        )
    elif baseline is not None:
        row["baseline_note"] = f"baseline failed ({baseline.get('returncode')})"
    return row


def fmt(value, spec: str, none: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return none
    return format(value, spec)


COLUMNS = (
    # (header line 1, header line 2, width, key, format)
    ("unknowns", "", 9, "unknowns", "d"),
    ("ranks", "", 5, "ranks", "d"),
    ("engine", "steps", 6, "steps", "d"),
    ("engine", "s/step", 7, "engine_step_s", ".3f"),
    ("engine", "cpu s", 7, "engine_step_cpu_s", ".3f"),
    ("Newton", "/step", 6, "engine_newton_per_step", ".2f"),
    ("Krylov", "/Newt", 6, "engine_krylov_per_newton", ".1f"),
    ("assem", "share", 6, "engine_assembly_share", ".0%"),
    ("peak", "MiB", 6, "engine_peak_mib", ".0f"),
    ("|base", "|solver", 10, "baseline_linear", "s"),
    ("base", "steps", 6, "baseline_steps", "d"),
    ("engine", "s/step", 7, "engine_window_step_s", ".3f"),
    ("base", "s/step", 7, "baseline_step_s", ".3f"),
    ("ratio", "wall", 6, "ratio", ".2f"),
    ("ratio", "cpu", 6, "cpu_ratio", ".2f"),
    ("base", "Newton", 6, "baseline_newton_per_step", ".2f"),
    ("base", "assem", 6, "baseline_assembly_share", ".0%"),
    ("base", "MiB", 6, "baseline_peak_mib", ".0f"),
    ("agree", "rel", 7, "agreement", ".0e"),
)


def table(rows: list[dict]) -> str:
    """Left part: the engine over steps 2..N; right part (from "base steps" on): the
    engine and the baseline over the same steps 2..M (M = baseline steps)."""
    lines = [
        " ".join(f"{h1:>{w}}" for h1, _, w, _, _ in COLUMNS),
        " ".join(f"{h2:>{w}}" for _, h2, w, _, _ in COLUMNS),
    ]
    lines.append("-" * len(lines[0]))
    notes = []
    for r in rows:
        line = " ".join(f"{fmt(r[key], spec):>{w}}" for _, _, w, key, spec in COLUMNS)
        if r["baseline_note"]:
            line += " *"
            notes.append(f"* {r['unknowns']} unknowns, {r['ranks']} rank(s): {r['baseline_note']}")
        lines.append(line)
    return "\n".join(lines + notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sizes",
        type=float,
        nargs="+",
        default=list(DEFAULT_SIZES),
        help=f"gmsh mesh sizes (µm) (default {' '.join(map(str, DEFAULT_SIZES))}: "
        "about 10k, 50k, 200k unknowns)",
    )
    p.add_argument("--steps", type=int, default=100, help="time steps of the engine (default 100)")
    p.add_argument(
        "--large-steps",
        type=int,
        default=30,
        help="steps at mesh sizes below --large-below (default 30, to keep the "
        "whole benchmark near 25 min on 2 cores; the mean over steps 2..30 is steady)",
    )
    p.add_argument(
        "--large-below",
        type=float,
        default=0.03,
        help="mesh size (µm) under which --large-steps applies (default 0.03: the 200k size)",
    )
    p.add_argument(
        "--baseline-steps",
        type=int,
        default=20,
        help="time steps of the baseline (default 20, at most --steps): its cost "
        "per step is steady (3 Newton iterations, one MUMPS LU each)",
    )
    p.add_argument(
        "--baselines",
        nargs="+",
        choices=BASELINES,
        default=list(BASELINES),
        help="linear solvers of the hand-written baseline (default both: MUMPS LU, and "
        "GMRES with a field split and GAMG on each field)",
    )
    p.add_argument(
        "--baseline-max-unknowns",
        type=int,
        default=60000,
        help="skip the MUMPS baseline above this many unknowns (default 60000: MUMPS LU "
        "at 200k takes ~50 s/step and ~3 GB)",
    )
    p.add_argument(
        "--ranks",
        type=int,
        nargs="+",
        default=list(RANKS),
        help="MPI rank counts (default 1 2; never more than the cores)",
    )
    p.add_argument(
        "--direct",
        action="store_true",
        help="also time the engine with --linear direct (serial, sizes with a "
        "baseline, --baseline-steps steps)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="time limit of each subprocess, s (default 3600)",
    )
    p.add_argument(
        "--quick", action="store_true", help=f"smoke test: size {QUICK_SIZE} only, 10 steps"
    )
    p.add_argument("--out", type=Path, default=RESULTS / "exchange.json")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.steps, args.large_steps, args.baseline_steps = [QUICK_SIZE], 10, 10, 10
    if any(r > (os.cpu_count() or 1) for r in args.ranks):
        p.error(f"more ranks than cores ({os.cpu_count()}) would only measure oversubscription")

    # every run's record and log beside the summary: results/exchange/engine-0.041-n2.json
    folder = args.out.parent / args.out.stem
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    info = machine()
    sources_start = engine_sources()
    runs, rows = [], []
    for size in args.sizes:
        steps = args.steps
        if size < args.large_below:
            steps = min(args.large_steps, args.steps)
        base_steps = max(2, min(args.baseline_steps, steps))
        for ranks in args.ranks:
            tag = f"engine-{size:g}-n{ranks}"
            engine = run_one(
                "engine.py",
                ranks,
                ["--size", str(size), "--steps", str(steps)],
                tag,
                args.timeout,
                folder,
            )
            runs.append(engine)
            unknowns = engine.get("unknowns")
            for linear in args.baselines:
                baseline, note = None, ""
                if (
                    linear == "mumps"
                    and unknowns is not None
                    and unknowns > args.baseline_max_unknowns
                ):
                    note = (
                        f"baseline skipped: {unknowns} > --baseline-max-unknowns "
                        f"{args.baseline_max_unknowns} (MUMPS LU at ~200k: ~50 s/step, ~3 GB)"
                    )
                else:
                    baseline = run_one(
                        "baseline_dolfinx.py",
                        ranks,
                        ["--size", str(size), "--steps", str(base_steps), "--linear", linear],
                        f"baseline-{linear}-{size:g}-n{ranks}",
                        args.timeout,
                        folder,
                    )
                    runs.append(baseline)
                rows.append(row_of(size, ranks, engine, baseline, note, linear))
            if args.direct and ranks == 1 and (unknowns or 0) <= args.baseline_max_unknowns:
                direct = run_one(
                    "engine.py",
                    1,
                    ["--size", str(size), "--steps", str(base_steps), "--linear", "direct"],
                    f"engine-direct-{size:g}-n1",
                    args.timeout,
                    folder,
                )
                runs.append(direct)

    direct_rows = []
    for r in runs:
        if r.get("code") == "engine" and r.get("linear") == "direct":
            it = next(
                (
                    x
                    for x in runs
                    if x.get("code") == "engine"
                    and x.get("linear") == "iterative"
                    and x.get("mesh_size") == r["mesh_size"]
                    and x.get("ranks") == 1
                ),
                None,
            )
            m = r.get("steps_done")
            d_wall, d_cpu = window_mean(r, "wall_s", m), window_mean(r, "cpu_s", m)
            i_wall, i_cpu = window_mean(it, "wall_s", m), window_mean(it, "cpu_s", m)
            direct_rows.append(
                {
                    "unknowns": r.get("unknowns"),
                    "steps": m,  # both over steps 2..m
                    "direct_step_s": d_wall,
                    "direct_step_cpu_s": d_cpu,
                    "direct_newton_per_step": r.get("newton_per_step"),
                    "direct_peak_mib": r.get("peak_rss_mib"),
                    "iterative_step_s": i_wall,
                    "iterative_step_cpu_s": i_cpu,
                    "iterative_peak_mib": it and it.get("peak_rss_mib"),
                    "ratio_direct_over_iterative": ratio(d_wall, i_wall),
                    "cpu_ratio_direct_over_iterative": ratio(d_cpu, i_cpu),
                }
            )

    wall = time.perf_counter() - start
    sources_end = engine_sources()
    hashes = sorted({r["engine_source_sha256"] for r in runs if "engine_source_sha256" in r})
    engine_changed = sources_end["sha256"] != sources_start["sha256"] or len(hashes) > 1
    a, b = sources_start["files"], sources_end["files"]
    changed_files = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    failures = [r.get("log") for r in runs if r.get("returncode") != 0]
    disagree = [r for r in rows if r["agreement"] is not None and r["agreement"] > AGREEMENT]
    summary = {
        "benchmark": "exchange_3d: bulk-surface nonlinear exchange, unit ball, backward Euler, "
        "dt = 0.01 s",
        "date": started,
        "machine": info,
        "versions": next((r["versions"] for r in runs if "versions" in r), None),
        "engine": {
            "start": sources_start,
            "end": sources_end,
            "timed_hashes": hashes,
            "changed_during_run": engine_changed,
            "changed_files": changed_files,
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "wall_s": wall,
        "agreement_required": AGREEMENT,
        "all_agree": not disagree,
        "failures": failures,
        "table": rows,
        "direct_vs_iterative": direct_rows,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")

    print(
        f"exchange benchmark, {started}, {info['cores']} cores ({info['cpu']}), "
        f"total wall {wall:.0f} s"
    )
    print(table(rows))
    for d in direct_rows:
        print(
            f"engine direct (MUMPS) vs iterative, {d['unknowns']} unknowns, serial, "
            f"steps 2..{d['steps']}: "
            f"{fmt(d['direct_step_s'], '.3f')} vs {fmt(d['iterative_step_s'], '.3f')} s/step "
            f"(ratio {fmt(d['ratio_direct_over_iterative'], '.1f')}, cpu ratio "
            f"{fmt(d['cpu_ratio_direct_over_iterative'], '.1f')}), peak "
            f"{fmt(d['direct_peak_mib'], '.0f')} vs {fmt(d['iterative_peak_mib'], '.0f')} MiB"
        )
    print(
        f"engine: commit {sources_start['commit']}, sources {', '.join(hashes)}"
        + (" (with local changes in solver/)" if sources_start["local_changes"] else "")
    )
    if engine_changed:
        print(
            f"WARNING: solver/ changed during the benchmark ({', '.join(changed_files)}): "
            "the runs may have timed different engines; unless the changes are off the "
            "path of Simulation.step, run it again"
        )
    if disagree:
        print(f"ERROR: engine and baseline totals differ by more than {AGREEMENT:g}")
    if failures:
        print(f"ERROR: failed runs: {', '.join(map(str, failures))}")
    print(f"results: {args.out}")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    return 1 if failures or disagree else 0


if __name__ == "__main__":
    sys.exit(main())
