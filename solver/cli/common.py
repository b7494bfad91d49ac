"""What every subcommand shares: exit codes, printing on rank 0, and the stop options.

Exit codes: 0 completed, 1 failed (a Newton failure, or a file that could not be
written: ``run.json`` says ``failed`` with the reason), 2 bad input or an unusable
output folder (one line on standard error), 75
stopped with a checkpoint (sysexits' EX_TEMPFAIL, "try again later": continue with
``--restart``; batch scripts requeue on it).
"""

from __future__ import annotations

import argparse
import time

from mpi4py import MPI

from solver.config import units
from solver.errors import InputError

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2
EXIT_STOPPED = 75

_STARTED = [time.perf_counter()]  # reset by restart_clock(): the origin of --wall-time


def say(*args: object) -> None:
    """Print on rank 0 only, flushed (output of MPI runs stays in order)."""
    if MPI.COMM_WORLD.rank == 0:
        print(*args, flush=True)


def restart_clock() -> None:
    """Make now the origin of ``--wall-time`` (called when the program starts)."""
    _STARTED[0] = time.perf_counter()


def started() -> float:
    """``time.perf_counter()`` at the program's start: the origin of ``--wall-time``."""
    return _STARTED[0]


def add_set_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help
        or "override a run-file value, e.g. --set mesh.size=0.4 "
        "--set parameters.k_on='2 1/s' (repeatable)",
    )


def add_stop_options(parser: argparse.ArgumentParser, restart: str, wall_time: str) -> None:
    """``--overwrite``, ``--restart`` and ``--wall-time`` (read with :func:`wall_time_of`)."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output folder: only an empty one or one holding an earlier "
        "run's outputs (its run.json), never one holding the run file or the current folder",
    )
    parser.add_argument("--restart", action="store_true", help=restart)
    parser.add_argument("--wall-time", default=None, metavar="DURATION", help=wall_time)


def wall_time_of(args: argparse.Namespace) -> float | None:
    """The ``--wall-time`` in seconds, or None; InputError when it is not a duration."""
    if args.wall_time is None:
        return None
    try:
        return units.parse_duration(args.wall_time)
    except units.UnitError as err:
        raise InputError("--wall-time", str(err)) from None
