"""``polarity sweep``: the Cartesian product of ``--vary`` values, one table of results.

    mpiexec -n 4 polarity sweep CONFIG --vary parameters.k_on=0.5,1,2 \\
        --vary mesh.size=0.4,0.2 [--set time.end=60] [-o OUT] [--group-size 2]
    polarity sweep CONFIG --vary ... -o OUT --slurm [--ranks 2 --time 02:00:00]

Exit code 0 when every member completed, 1 when some did not (the table says which
and why), 2 for a malformed sweep (bad ``--vary``, no valid member, occupied ``OUT``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mpi4py import MPI

from solver import sweep
from solver.errors import InputError

EXIT_OK, EXIT_FAILED = 0, 1


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
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override applied to every member (repeatable)",
    )
    p.add_argument(
        "-o", "--out", type=Path, default=None, help="output folder (default <case>/sweep)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
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


def _say(*args) -> None:
    if MPI.COMM_WORLD.rank == 0:
        print(*args, flush=True)


def handle(args: argparse.Namespace) -> int:
    """Run, write the array scripts for, or collect a sweep; returns the exit code."""
    comm = MPI.COMM_WORLD
    plan = sweep.SweepPlan.from_args(args.config, args.overrides, args.vary)
    out: Path = args.out or plan.config.parent / "sweep"
    if args.collect:
        results = sweep.collect(plan, out) if comm.rank == 0 else []
        return _report(plan, out, results)
    if args.member is not None:  # one task of a job array: OUT was prepared by --slurm
        plan.values(args.member)  # checks the index
        result = sweep.run_member(plan, args.member, out, comm)
        if comm.rank == 0:
            sweep.write_record(out, result)
        comm.barrier()  # every rank returns once the record is written
        _say(f"member {result.member}: {result.status} {result.reason}".rstrip())
        return EXIT_OK if result.status == sweep.COMPLETED else EXIT_FAILED
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
    from solver.io import prepare_output_dir

    prepare_output_dir(out, comm, args.overwrite)
    if comm.rank == 0:
        sweep.write_plan(out, plan)
    if args.slurm:
        if comm.rank == 0:
            lines = [f"#SBATCH {o}" for o in args.sbatch_options]
            array, _, submit = sweep.write_slurm(plan, out, args.ranks, args.wall_time, lines)
            print(f"{plan.size} members; job array script: {array}", flush=True)
            print(f"submit with: {submit}  (then the table is {out / sweep.TABLE})", flush=True)
        comm.barrier()  # every rank returns once the scripts are written
        return EXIT_OK
    n_bad = sum(e is not None for e in invalid)
    _say(
        f"sweep: {plan.size} members of {plan.config} ({n_bad} invalid) on {comm.size} rank(s), "
        f"{comm.size // args.group_size} group(s) of {args.group_size}"
    )
    results = sweep.run_ensemble(plan, out, comm, args.group_size) or []
    return _report(plan, out, results)


def _report(plan: sweep.SweepPlan, out: Path, results: list[sweep.MemberResult]) -> int:
    """Print the table's summary on rank 0; all ranks return the same exit code."""
    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        for line in sweep.summary(results, plan.keys):
            print(line, flush=True)
        print(f"table: {out / sweep.TABLE}", flush=True)
    ok = comm.bcast(all(r.status == sweep.COMPLETED for r in results), root=0)
    return EXIT_OK if ok else EXIT_FAILED
