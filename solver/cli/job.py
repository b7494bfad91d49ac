"""``polarity job``: the Slurm batch script of a case, from the package's template.

::

    polarity job CONFIG [--ntasks N] [--time HH:MM:SS] [--job-name NAME] [-o FILE]

The script runs ``mpiexec -n $SLURM_NTASKS polarity run CONFIG -o OUT``, stops the run
with a checkpoint before the job's time limit and requeues itself until the run
completes (:mod:`solver.batch.scripts`). Paths in it are relative to the folder the
command runs in, which is where to submit it from. Without ``-o`` the script is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mpi4py import MPI

from solver.batch.scripts import DEFAULT_TIME, Limits, case_script, submit_path
from solver.cli.common import EXIT_OK, say
from solver.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``job`` subcommand."""
    p = subparsers.add_parser(
        "job",
        help="write the Slurm batch script of a case (stops before its limit, requeues itself)",
        description="Write a Slurm batch script that runs the case on --ntasks MPI ranks, "
        "stops it with a checkpoint before the job's time limit and requeues itself until "
        "the run completes. Paths in the script are relative to this folder: submit it from "
        "here. Without -o the script is printed.",
    )
    p.add_argument("config", type=Path, help="run file (TOML)")
    p.add_argument("--ntasks", type=int, default=1, metavar="N", help="MPI ranks (default 1)")
    p.add_argument(
        "--time",
        default=DEFAULT_TIME,
        metavar="HH:MM:SS",
        help=f"time limit of each job segment, as sbatch reads it (default {DEFAULT_TIME})",
    )
    p.add_argument(
        "--job-name", default=None, metavar="NAME", help="job name (default polarity-<case>)"
    )
    p.add_argument(
        "-o", "--out", type=Path, default=None, metavar="FILE", help="write the script here"
    )
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Check the run file and the limits, then write or print the script; exit code 0."""
    from solver import config as run_config

    config: Path = args.config
    if not config.is_file():
        raise InputError(str(config), "no such run file")
    cfg = run_config.load(config)  # InputError for a bad run file
    name = args.job_name or f"polarity-{config.resolve().parent.name}"
    limits = Limits(ntasks=args.ntasks, time=args.time, job_name=name)
    limits.check()
    if args.out is not None and args.out.is_dir():
        raise InputError(str(args.out), "is a folder; expected the name of the script")
    out = submit_path(cfg.output.dir) if cfg.output.dir is not None else None
    script = submit_path(args.out) if args.out is not None else None
    text = case_script(submit_path(config), limits, out=out, script=script)
    if args.out is None:
        say(text.rstrip("\n"))
    else:
        if MPI.COMM_WORLD.rank == 0:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
        MPI.COMM_WORLD.barrier()
        say(f"{args.out}: Slurm job of {config} on {limits.ntasks} rank(s), {limits.time} limit")
        say(f"submit from this folder: sbatch {args.out}")
    return EXIT_OK
