r"""``polarity sweep``: the Cartesian product of ``--vary`` values, one table of results.

    mpiexec -n 4 polarity sweep CONFIG --vary parameters.k_on=0.5,1,2 \
        --vary mesh.size=0.4,0.2 [--set time.end=60] [-o OUT] [--group-size 2]
    polarity sweep CONFIG --vary ... -o OUT --slurm [--ranks 2 --time 02:00:00]

Exit code 0 when every member completed, 1 when some did not (the table says which
and why), 2 for a malformed sweep (bad ``--vary``, no valid member, occupied ``OUT``),
75 when members were stopped by ``--wall-time`` or a signal (continue with the same
command and ``--restart``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mpi4py import MPI

from solver.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    add_set_option,
    add_stop_options,
    say,
    started,
    wall_time_of,
)
from solver.errors import InputError
from solver.sweep import ensemble as sweep
from solver.sweep.plan import PLAN, SweepPlan, write_plan
from solver.sweep.slurm import write_slurm
from solver.time.stops import Deadline


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand."""
    p = subparsers.add_parser(
        "sweep",
        help="run the Cartesian product of --vary values; one CSV of final read-outs",
        description="Run every combination of the --vary values (dotted keys as for --set) "
        "as an ensemble inside one mpiexec (groups of --group-size ranks), or write a Slurm "
        "job array with --slurm. Results: OUT/sweep.csv, one row per member; member "
        "outputs in OUT/member_NNN/.",
    )
    p.add_argument("config", type=Path, help="run file (TOML)")
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a key and its values, e.g. --vary parameters.k_on=0.5,1,2 (repeatable; "
        "commas inside [...] or quotes do not split)",
    )
    add_set_option(p, "override applied to every member (repeatable)")
    p.add_argument(
        "-o", "--out", type=Path, default=None, help="output folder (default <case>/sweep)"
    )
    add_stop_options(
        p,
        restart="continue the sweep in OUT: keep finished members, continue stopped ones from "
        "their checkpoints, run the others",
        wall_time="stop every member at a step boundary before this much wall time (e.g. 2h, "
        "01:30:00) with a checkpoint; members not started by then are not started; exit "
        "code 75",
    )
    p.add_argument(
        "--group-size",
        type=int,
        default=1,
        metavar="N",
        help="MPI ranks per member (must divide the number of ranks; default 1)",
    )
    slurm = p.add_argument_group("Slurm job array")
    slurm.add_argument(
        "--slurm",
        action="store_true",
        help="write OUT/sweep.sbatch (one member per array task), OUT/collect.sbatch and "
        "OUT/submit.sh instead of running",
    )
    slurm.add_argument("--ranks", type=int, default=1, help="MPI ranks per array task")
    slurm.add_argument(
        "--time", dest="wall_time", default="01:00:00", help="wall time per array task"
    )
    slurm.add_argument(
        "--sbatch",
        dest="sbatch_options",
        action="append",
        default=[],
        metavar="OPTION",
        help="extra #SBATCH line, e.g. --sbatch=--partition=short (repeatable)",
    )
    slurm.add_argument("--member", type=int, default=None, help=argparse.SUPPRESS)
    slurm.add_argument("--collect", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(handler=handle)


def _code(statuses: list[str]) -> int:
    """0 if all completed; 75 (as ``polarity run``) if some stopped; else 1."""
    if any(s == sweep.STOPPED for s in statuses):
        return EXIT_STOPPED
    return EXIT_OK if all(s == sweep.COMPLETED for s in statuses) else EXIT_FAILED


def _check_same_sweep(plan: SweepPlan, out: Path, comm: MPI.Comm) -> None:
    """For --restart: OUT holds this sweep (same run file, --set and --vary)."""
    stored = None
    if comm.rank == 0:
        path = out / PLAN
        stored = json.loads(path.read_text()) if path.is_file() else None
    stored = comm.bcast(stored)
    if stored is None:
        raise InputError(
            str(out),
            f"no sweep to continue ({out / PLAN} does not exist); run without --restart",
        )
    now = plan.to_json()
    same_file = Path(stored.get("config", "")).resolve() == plan.config.resolve()
    differ = [k for k in now if stored.get(k) != now[k] and not (k == "config" and same_file)]
    if differ:
        listed = "; ".join(f"{k}: {stored.get(k)!r} -> {now[k]!r}" for k in differ)
        raise InputError(
            str(out / PLAN),
            f"the sweep in {out} differs from this command ({listed}); "
            "give the same run file, --set and --vary, or another -o",
        )


def handle(args: argparse.Namespace) -> int:
    """Run, write the array scripts for, or collect a sweep; returns the exit code."""
    from solver.time.stops import stop_on_signals

    comm = MPI.COMM_WORLD
    plan = SweepPlan.from_args(args.config, args.overrides, args.vary)
    out: Path = args.out or plan.config.parent / "sweep"
    if args.collect:
        results = sweep.collect(plan, out) if comm.rank == 0 else []
        return _report(plan, out, results)
    if args.restart and args.overwrite:
        raise InputError("--restart", "cannot be combined with --overwrite")
    stop_on_signals()
    deadline = Deadline(wall_time_of(args), started())
    if args.member is not None:  # one task of a job array: OUT was prepared by --slurm
        plan.values(args.member)  # checks the index
        kept = sweep.final_record(out, args.member, comm) if args.restart else None
        if kept is not None:
            say(f"member {kept.member}: already {kept.status}")
            return _code([kept.status])
        result = sweep.run_member(plan, args.member, out, comm, deadline, resume=args.restart)
        if comm.rank == 0:
            sweep.write_record(out, result)
        comm.barrier()  # every rank returns once the record is written
        say(f"member {result.member}: {result.status} {result.reason}".rstrip())
        return _code([result.status])
    if args.slurm and args.ranks < 1:
        raise InputError("--ranks", f"expected a positive number of ranks, got {args.ranks}")
    bad = [o for o in args.sbatch_options if not o.startswith("--")]
    if bad:
        raise InputError("--sbatch", f"expected an sbatch option like --qos=short, got {bad[0]!r}")
    if args.group_size < 1 or comm.size % args.group_size:
        raise InputError(
            "--group-size",
            f"expected a divisor of the number of ranks ({comm.size}), got {args.group_size}",
        )
    invalid = plan.validate()  # InputError if no member is valid
    from solver.io.files import prepare_output_dir

    if args.restart:
        _check_same_sweep(plan, out, comm)
    else:
        prepare_output_dir(out, comm, args.overwrite)
        if comm.rank == 0:
            write_plan(out, plan)
    if args.slurm:
        if comm.rank == 0:
            lines = [f"#SBATCH {o}" for o in args.sbatch_options]
            array, _, submit = write_slurm(plan, out, args.ranks, args.wall_time, lines)
            print(f"{plan.size} members; job array script: {array}", flush=True)
            print(f"submit with: {submit}  (then the table is {out / sweep.TABLE})", flush=True)
        comm.barrier()  # every rank returns once the scripts are written
        return EXIT_OK
    n_bad = sum(e is not None for e in invalid)
    say(
        f"sweep: {plan.size} members of {plan.config} ({n_bad} invalid) on {comm.size} rank(s), "
        f"{comm.size // args.group_size} group(s) of {args.group_size}"
    )
    results = sweep.run_ensemble(plan, out, comm, args.group_size, deadline, args.restart) or []
    return _report(plan, out, results)


def _report(plan: SweepPlan, out: Path, results: list[sweep.MemberResult]) -> int:
    """Print the table's summary on rank 0; all ranks return the same exit code."""
    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        for line in sweep.summary(results, plan.keys):
            print(line, flush=True)
        print(f"table: {out / sweep.TABLE}", flush=True)
    if comm.rank == 0 and any(r.status == sweep.STOPPED for r in results):
        print("members stopped: continue with the same command and --restart", flush=True)
    return comm.bcast(_code([r.status for r in results]), root=0)
